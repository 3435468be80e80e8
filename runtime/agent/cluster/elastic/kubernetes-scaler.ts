/**
 * The Kubernetes scaler: sets the replicas of the pool's worker workload through its scale subresource,
 * the one thing the control plane's Role allows (get, patch and update on `<kind>/scale` of that workload,
 * by name). Pending worker pods then bring GPU nodes up through cluster-autoscaler or Karpenter; surplus
 * pods get SIGTERM and drain (no new stages, running ones finish) before they exit.
 *
 * In the cluster it finds the API server as every in-cluster client does: KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT, the service account's token and CA under /var/run/secrets/kubernetes.io/
 * serviceaccount. The token is read again on every call: projected tokens are rotated by the kubelet.
 *
 *   GET   /apis/apps/v1/namespaces/{ns}/{statefulsets|deployments}/{name}/scale
 *   PATCH the same, Content-Type application/merge-patch+json, body {"spec":{"replicas":n}}
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import type { WorkerScaler } from "./scaler.ts";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubernetesScalerOptions {
  /** The pool whose workers the workload runs: scaleTo() for another pool is refused. */
  readonly pool: string;
  readonly namespace: string;
  readonly kind: "StatefulSet" | "Deployment";
  readonly name: string;
  /** @default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
  readonly apiServer?: string;
  /** Where the token and ca.crt are. @default /var/run/secrets/kubernetes.io/serviceaccount */
  readonly serviceAccountDir?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** @default 10000 */
  readonly timeoutMs?: number;
}

/** A refusal or failure of the API server, with what to do about it. */
export class KubernetesScaleError extends Error {
  constructor(
    message: string,
    readonly status: number | null
  ) {
    super(message);
    this.name = "KubernetesScaleError";
  }
}

interface Scale {
  readonly spec?: { readonly replicas?: number };
  readonly status?: { readonly replicas?: number };
}

export class KubernetesScaler implements WorkerScaler {
  readonly kind = "kubernetes" as const;
  private readonly base: string;
  private readonly dir: string;
  private readonly plural: "statefulsets" | "deployments";

  constructor(private readonly o: KubernetesScalerOptions) {
    const env = o.env ?? process.env;
    this.dir = o.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
    if (o.apiServer !== undefined) this.base = o.apiServer.replace(/\/+$/, "");
    else {
      const host = env.KUBERNETES_SERVICE_HOST;
      const port = env.KUBERNETES_SERVICE_PORT ?? "443";
      if (host === undefined || host === "") {
        throw new KubernetesScaleError(
          "cluster.elasticity.provider 'kubernetes' needs the Kubernetes API: KUBERNETES_SERVICE_HOST is not set (the agent runs outside a pod). Run the control planes in the cluster, or use provider { type: 'none' } and scale with KEDA",
          null
        );
      }
      // An IPv6 service address goes in brackets in a URL.
      this.base = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
    }
    this.plural = o.kind === "StatefulSet" ? "statefulsets" : "deployments";
  }

  /** The replicas the workload is asked to run (spec.replicas): the workers running or starting. */
  async current(pool: string): Promise<number> {
    this.assertPool(pool);
    const scale = await this.call("GET", undefined);
    return scale.spec?.replicas ?? 0;
  }

  async scaleTo(pool: string, replicas: number): Promise<void> {
    this.assertPool(pool);
    if (!Number.isInteger(replicas) || replicas < 0) throw new KubernetesScaleError(`replicas must be a whole number of 0 or more, not ${replicas}`, null);
    // A merge patch of spec.replicas alone: it never conflicts with other fields, and needs no resourceVersion.
    await this.call("PATCH", { spec: { replicas } });
  }

  private get path(): string {
    return `/apis/apps/v1/namespaces/${encodeURIComponent(this.o.namespace)}/${this.plural}/${encodeURIComponent(this.o.name)}/scale`;
  }

  private get what(): string {
    return `${this.plural}/scale of ${this.o.kind} '${this.o.name}' in namespace '${this.o.namespace}'`;
  }

  private assertPool(pool: string): void {
    if (pool !== this.o.pool) throw new KubernetesScaleError(`this scaler sets the workers of pool '${this.o.pool}', not '${pool}'`, null);
  }

  private credentials(): { token: string; ca: Buffer } {
    try {
      return { token: readFileSync(join(this.dir, "token"), "utf8").trim(), ca: readFileSync(join(this.dir, "ca.crt")) };
    } catch (err) {
      throw new KubernetesScaleError(
        `the service account's token or CA could not be read under ${this.dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the control plane's pod must mount its service account token (automountServiceAccountToken: true, which the constructs set when elasticity uses the kubernetes provider)`,
        null
      );
    }
  }

  private call(method: "GET" | "PATCH", body: unknown): Promise<Scale> {
    const { token, ca } = this.credentials();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(this.path, `${this.base}/`);
    return new Promise<Scale>((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca,
          timeout: this.o.timeoutMs ?? 10_000,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(payload !== undefined && { "content-type": "application/merge-patch+json", "content-length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300 && parsed !== undefined) resolve(parsed as Scale);
            else reject(this.refusal(method, code, parsed, text));
          });
          res.on("error", reject);
        }
      );
      req.on("timeout", () => req.destroy(new KubernetesScaleError(`the Kubernetes API at ${this.base} did not answer ${method} ${this.what} within ${this.o.timeoutMs ?? 10_000} ms`, null)));
      req.on("error", (err) => reject(err instanceof KubernetesScaleError ? err : new KubernetesScaleError(`the Kubernetes API at ${this.base} could not be reached for ${this.what}: ${err.message}`, null)));
      req.end(payload);
    });
  }

  /** The API server's Status, turned into what to fix. */
  private refusal(method: string, code: number, parsed: unknown, text: string): KubernetesScaleError {
    const message = typeof (parsed as { message?: unknown } | undefined)?.message === "string" ? (parsed as { message: string }).message : text.slice(0, 300);
    const verb = method === "GET" ? "get" : "patch";
    switch (code) {
      case 401:
        return new KubernetesScaleError(`the Kubernetes API refused the service account token (401) for ${this.what}: the token under ${this.dir} is missing, expired or not of this cluster`, code);
      case 403:
        return new KubernetesScaleError(
          `the control plane may not ${verb} ${this.what} (403: ${message}). A Role in namespace '${this.o.namespace}' must allow verbs get, patch and update on resource '${this.plural}/scale' (apiGroup 'apps') with resourceNames ['${this.o.name}'], bound to the control plane's service account; the constructs synthesize it (WorkerScaleRole) when elasticity uses the kubernetes provider`,
          code
        );
      case 404:
        return new KubernetesScaleError(`${this.o.kind} '${this.o.name}' was not found in namespace '${this.o.namespace}' (404): check cluster.elasticity.provider's namespace, kind and name against the workers' workload`, code);
      default:
        return new KubernetesScaleError(`the Kubernetes API answered ${code} to ${method} ${this.what}: ${message}`, code);
    }
  }
}
