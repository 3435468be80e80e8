/**
 * The Kubernetes scaler against a stand-in API server (test/support/kube-api-standin.ts: HTTPS with a test
 * CA, the bearer token checked, the scale subresource as documented).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubernetesScaler, KubernetesScaleError } from "../../../runtime/agent/cluster/elastic/kubernetes-scaler.ts";
import { startKubeApiStandIn, type KubeApiStandIn } from "../../support/kube-api-standin.ts";

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

describe.skipIf(!hasOpenssl)("KubernetesScaler", () => {
  let api: KubeApiStandIn;
  beforeAll(async () => {
    api = await startKubeApiStandIn({ token: "sa-token-1", workloads: { "gpufabric/statefulsets/batch-worker": 1, "gpufabric/deployments/render-worker": 2 } });
  });
  afterAll(async () => api?.close());

  const scaler = (over: Partial<ConstructorParameters<typeof KubernetesScaler>[0]> = {}) =>
    new KubernetesScaler({
      pool: "batch",
      namespace: "gpufabric",
      kind: "StatefulSet",
      name: "batch-worker",
      serviceAccountDir: api.serviceAccountDir,
      env: { KUBERNETES_SERVICE_HOST: api.host, KUBERNETES_SERVICE_PORT: String(api.port) },
      ...over,
    });

  it("reads spec.replicas and sets it with a merge patch of the scale subresource, trusting the service account's CA", async () => {
    const s = scaler();
    expect(await s.current("batch")).toBe(1);
    await s.scaleTo("batch", 3);
    expect(api.replicas("gpufabric", "statefulsets", "batch-worker")).toBe(3);
    expect(await s.current("batch")).toBe(3);
    const patch = api.requests.find((r) => r.method === "PATCH")!;
    expect(patch).toEqual({ method: "PATCH", path: "/apis/apps/v1/namespaces/gpufabric/statefulsets/batch-worker/scale", contentType: "application/merge-patch+json", body: { spec: { replicas: 3 } } });
    // A Deployment's scale lives under deployments.
    const d = scaler({ kind: "Deployment", name: "render-worker" });
    await d.scaleTo("batch", 0);
    expect(api.replicas("gpufabric", "deployments", "render-worker")).toBe(0);
  });

  it("reads the token again on every call (projected tokens rotate)", async () => {
    const s = scaler();
    writeFileSync(join(api.serviceAccountDir, "token"), "stale");
    await expect(s.current("batch")).rejects.toThrow(/refused the service account token \(401\)/);
    writeFileSync(join(api.serviceAccountDir, "token"), "sa-token-1\n");
    await expect(s.current("batch")).resolves.toBeTypeOf("number");
  });

  it("names the missing Role on a 403, and the workload on a 404", async () => {
    api.allow(["get"]);
    try {
      const err = await scaler().scaleTo("batch", 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KubernetesScaleError);
      expect((err as KubernetesScaleError).status).toBe(403);
      expect((err as Error).message).toMatch(/may not patch statefulsets\/scale of StatefulSet 'batch-worker' in namespace 'gpufabric' \(403: .*cannot patch resource "statefulsets\/scale"/);
      expect((err as Error).message).toMatch(/verbs get, patch and update on resource 'statefulsets\/scale' \(apiGroup 'apps'\) with resourceNames \['batch-worker'\]/);
    } finally {
      api.allow(["get", "patch", "update"]);
    }
    await expect(scaler({ name: "nope" }).current("batch")).rejects.toThrow(/StatefulSet 'nope' was not found in namespace 'gpufabric' \(404\): check cluster\.elasticity\.provider/);
  });

  it("refuses another pool, a bad count, a pod without its token and a process outside a pod", async () => {
    await expect(scaler().scaleTo("render", 1)).rejects.toThrow(/sets the workers of pool 'batch', not 'render'/);
    await expect(scaler().scaleTo("batch", -1)).rejects.toThrow(/whole number of 0 or more/);
    await expect(scaler({ serviceAccountDir: "/nonexistent" }).current("batch")).rejects.toThrow(/token or CA could not be read under \/nonexistent \(ENOENT\).*automountServiceAccountToken/);
    expect(() => scaler({ env: {} })).toThrow(/KUBERNETES_SERVICE_HOST is not set.*provider \{ type: 'none' \}/);
  });
});
