/**
 * A stand-in for the Kubernetes API server, for tests only (it lives in test/, never in the runtime): the
 * scale subresource of apps/v1 workloads as the API documents it, over HTTPS with a certificate of a test CA
 * and a bearer token checked on every request.
 *
 *   GET   /apis/apps/v1/namespaces/{ns}/{statefulsets|deployments}/{name}/scale  → an autoscaling/v1 Scale
 *   PATCH the same path, Content-Type application/merge-patch+json, {"spec":{"replicas":n}} → the new Scale
 *
 * Errors answer as the API server does, with a `Status` object (kind Status, status Failure, reason, code):
 * 401 for a missing or wrong token, 403 for a verb the `allow` list does not grant, 404 for an unknown
 * workload, 415 for another patch type, 422 for a bad replica count.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ScaleRequest {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

export interface KubeApiStandIn {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** A service account directory as a pod sees it: `token`, `ca.crt`, `namespace`. */
  readonly serviceAccountDir: string;
  /** Every request, in order. */
  readonly requests: ScaleRequest[];
  /** Desired replicas by `<ns>/<plural>/<name>`. */
  replicas(namespace: string, plural: "statefulsets" | "deployments", name: string): number | undefined;
  /** Verbs granted on `<plural>/scale` (as a Role would): [] makes every call a 403. */
  allow(verbs: readonly string[]): void;
  close(): Promise<void>;
}

/** Openssl makes a test CA and a server certificate for 127.0.0.1 signed by it. */
function testCertificates(dir: string): { ca: string; key: string; cert: string } {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=test-kubernetes-ca", "-keyout", "ca.key", "-out", "ca.crt"]);
  run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=kubernetes", "-keyout", "server.key", "-out", "server.csr"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\n");
  run(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "server.crt"]);
  return { ca: readFileSync(join(dir, "ca.crt"), "utf8"), key: readFileSync(join(dir, "server.key"), "utf8"), cert: readFileSync(join(dir, "server.crt"), "utf8") };
}

const SCALE_PATH = /^\/apis\/apps\/v1\/namespaces\/([a-z0-9-]+)\/(statefulsets|deployments)\/([a-z0-9.-]+)\/scale$/;

export async function startKubeApiStandIn(options: {
  readonly token: string;
  /** Workloads and their replicas, by `<ns>/<plural>/<name>`. */
  readonly workloads: Record<string, number>;
  readonly namespace?: string;
}): Promise<KubeApiStandIn> {
  const dir = mkdtempSync(join(tmpdir(), "gf-kube-"));
  const tls = testCertificates(dir);
  const sa = join(dir, "serviceaccount");
  mkdirSync(sa);
  writeFileSync(join(sa, "token"), options.token);
  writeFileSync(join(sa, "ca.crt"), tls.ca);
  writeFileSync(join(sa, "namespace"), options.namespace ?? "default");
  const workloads = new Map(Object.entries(options.workloads));
  const requests: ScaleRequest[] = [];
  let verbs = new Set(["get", "patch", "update"]);

  const status = (code: number, reason: string, message: string) => ({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code });
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = undefined;
      try {
        body = text === "" ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      const path = (req.url ?? "").split("?")[0]!;
      requests.push({ method: req.method ?? "", path, contentType: req.headers["content-type"], body });
      const send = (code: number, value: unknown) => res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(value));
      if (req.headers.authorization !== `Bearer ${options.token}`) return send(401, status(401, "Unauthorized", "Unauthorized"));
      const m = SCALE_PATH.exec(path);
      if (m === null) return send(404, status(404, "NotFound", "the server could not find the requested resource"));
      const [, ns, plural, name] = m as unknown as [string, string, string, string];
      const verb = req.method === "GET" ? "get" : req.method === "PATCH" ? "patch" : req.method === "PUT" ? "update" : "";
      const who = "system:serviceaccount:gpufabric:agent";
      if (!verbs.has(verb)) {
        return send(403, status(403, "Forbidden", `${plural}.apps "${name}" is forbidden: User "${who}" cannot ${verb} resource "${plural}/scale" in API group "apps" in the namespace "${ns}"`));
      }
      const key = `${ns}/${plural}/${name}`;
      const replicas = workloads.get(key);
      if (replicas === undefined) return send(404, status(404, "NotFound", `${plural}.apps "${name}" not found`));
      const scale = (n: number) => ({
        kind: "Scale",
        apiVersion: "autoscaling/v1",
        metadata: { name, namespace: ns, resourceVersion: String(requests.length) },
        spec: { replicas: n },
        status: { replicas: n, selector: `app.kubernetes.io/name=${name}` },
      });
      if (verb === "get") return send(200, scale(replicas));
      if (verb === "patch") {
        if (req.headers["content-type"] !== "application/merge-patch+json") {
          return send(415, status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`));
        }
        const wanted = (body as { spec?: { replicas?: unknown } } | undefined)?.spec?.replicas;
        if (typeof wanted !== "number" || !Number.isInteger(wanted) || wanted < 0) {
          return send(422, status(422, "Invalid", `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: must be greater than or equal to 0`));
        }
        workloads.set(key, wanted);
        return send(200, scale(wanted));
      }
      return send(405, status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    host: "127.0.0.1",
    port,
    serviceAccountDir: sa,
    requests,
    replicas: (ns, plural, name) => workloads.get(`${ns}/${plural}/${name}`),
    allow: (v) => (verbs = new Set(v)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
