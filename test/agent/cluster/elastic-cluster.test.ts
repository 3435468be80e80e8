/**
 * Elasticity in a real control plane (`gpufabric agent` with a cluster section, real PostgreSQL) whose
 * provider is the Kubernetes scale subresource, served by the stand-in API server of test/support (HTTPS,
 * a test CA, the bearer token checked). The pool starts with no worker at all: a ready stage no GPU in
 * service can take raises gpufabric_pool_desired_workers and the API's demand, and the stand-in receives
 * the merge patch of spec.replicas. A worker then registers (the pod the replica brought up) and the run
 * finishes on it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterPlatform } from "../../../runtime/agent/cluster/local-cluster.ts";
import { loadPlatformConfig, parsePlatformConfig } from "../../../runtime/config/index.ts";
import { generateToken } from "../../../runtime/security/identity/index.ts";
import { startKubeApiStandIn, type KubeApiStandIn } from "../../support/kube-api-standin.ts";
import { dropSchema, startTestPostgres, uniqueSchema, type TestPostgres } from "../../support/postgres.ts";
import { client, createPlatform, REPO_ROOT, removePlatform, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess, type TestPlatform } from "../service/harness.ts";

const TIMEOUT = 120_000;
const started = await startTestPostgres();
const server = "skip" in started ? undefined : (started as TestPostgres);
const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
if (!server) console.warn(`note: the elastic cluster test is skipped: ${(started as { skip: string }).skip}`);

describe.runIf(server !== undefined && hasOpenssl)("a control plane with elasticity over the Kubernetes scale subresource", () => {
  let platform: TestPlatform;
  let api: KubeApiStandIn;
  let agent: AgentProcess;
  let worker: ChildProcess | undefined;
  const schema = uniqueSchema("elastic");
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  let pool = "";
  let workerToken = "";
  let node = "";

  beforeAll(async () => {
    api = await startKubeApiStandIn({ token: "control-plane-sa-token", workloads: { "gpufabric/statefulsets/studio-worker": 0 } });
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
    // Two nodes of one GPU each, no worker started: the pool begins at zero.
    const base = clusterPlatform(loadPlatformConfig(platform.configFile), { dataDir: platform.dataDir, workers: 2, controlPlanes: 1, gpusPerWorker: 1 });
    pool = base.deployment.pool;
    node = base.pools.find((p) => p.name === pool)!.devices[0]!.node;
    const config = parsePlatformConfig(
      {
        ...base,
        cluster: {
          ...base.cluster!,
          elasticity: {
            enabled: true,
            minWorkers: 0,
            intervalSeconds: 0.5,
            provider: { type: "kubernetes", namespace: "gpufabric", kind: "StatefulSet", name: "studio-worker", serviceAccountDir: api.serviceAccountDir },
          },
        },
      },
      "elastic test config"
    );
    mkdirSync(config.cluster!.sharedDir, { recursive: true });
    mkdirSync(config.cluster!.workerTokens.mountPath, { recursive: true });
    const token = generateToken("worker-0");
    workerToken = token.token;
    writeFileSync(join(config.cluster!.workerTokens.mountPath, "workers"), `${token.line}\n`, { mode: 0o600 });
    writeFileSync(platform.configFile, JSON.stringify(config));
    // The control plane finds the API server as a pod does (the stand-in's address instead of the Service's).
    process.env.KUBERNETES_SERVICE_HOST = api.host;
    process.env.KUBERNETES_SERVICE_PORT = String(api.port);
    agent = await startAgentProcess(platform, ["--database", `${server!.url}${server!.url.includes("?") ? "&" : "?"}schema=${schema}`]);
  }, TIMEOUT);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once("exit", r));
      worker.kill("SIGINT");
      await exited;
    }
    await agent?.stop();
    await api?.close();
    process.env.KUBERNETES_SERVICE_HOST = saved.host;
    process.env.KUBERNETES_SERVICE_PORT = saved.port;
    if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
    if (server) await dropSchema(server.url, schema).catch(() => undefined);
    if (platform) removePlatform(platform);
  }, TIMEOUT);

  it(
    "raises the desired workers for a stage no GPU in service can take, patches the scale subresource, and runs the stage once a worker registers",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const rival = client(agent.url, platform.tokens.rival!);
      // The leader computes: nothing waits, nothing is asked of Kubernetes.
      const idle = await waitFor("the leader's demand", async () => {
        const r = await studio.get(`/v1/pools/${pool}/demand`);
        return r.status === 200 ? r.body : undefined;
      });
      expect(idle).toMatchObject({ pool, desiredWorkers: 0, currentWorkers: 0, readyWorkers: 0, requestedWorkers: 0, minWorkers: 0, maxWorkers: 2, provider: "kubernetes", scalerError: null });
      expect(api.requests.filter((r) => r.method === "PATCH")).toEqual([]);

      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("elastic", [{ id: "render", ms: 300 }]), priority: "interactive" });
      expect(submitted.status).toBe(202);
      const runId = submitted.body.id as string;

      // The built-in scaler's merge patch, as the API documents it.
      await waitFor("the scale subresource patched", () => api.replicas("gpufabric", "statefulsets", "studio-worker") === 1, 20_000);
      const patch = api.requests.find((r) => r.method === "PATCH")!;
      expect(patch).toEqual({ method: "PATCH", path: "/apis/apps/v1/namespaces/gpufabric/statefulsets/studio-worker/scale", contentType: "application/merge-patch+json", body: { spec: { replicas: 1 } } });

      // The metric and the API say the same; the replica asked for counts as starting.
      const metrics = (await studio.get("/metrics", { accept: "text/plain" })).body as string;
      expect(metrics).toMatch(new RegExp(`^gpufabric_pool_desired_workers\\{pool="${pool}"\\} 1$`, "m"));
      expect(metrics).toMatch(new RegExp(`^gpufabric_pool_ready_workers\\{pool="${pool}"\\} 0$`, "m"));
      const demand = await waitFor("the patched replica counted as starting", async () => {
        const body = (await studio.get(`/v1/pools/${pool}/demand`)).body;
        return body.startingWorkers === 1 ? body : undefined;
      });
      expect(demand).toMatchObject({ desiredWorkers: 1, currentWorkers: 1, requestedWorkers: 1, breakdown: { interactiveWorkers: 0 } });
      // Another tenant sees the count, never the stage.
      const theirs = (await rival.get(`/v1/pools/${pool}/demand`)).body;
      expect(theirs.waiting.total).toBe(1);
      expect(theirs.waiting.mine).toEqual([]);
      expect(JSON.stringify(theirs)).not.toContain(runId);
      const mine = (await studio.get(`/v1/pools/${pool}/demand`)).body;
      expect(mine.waiting.mine).toEqual([expect.objectContaining({ runId, stageId: "render", gpus: 1, priority: "interactive" })]);

      // The pod the replica brought up: a worker registers, the stage runs on it, and nothing more is asked.
      const dir = join(platform.dataDir, "worker-0");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "token"), `${workerToken}\n`, { mode: 0o600 });
      worker = spawn(
        process.execPath,
        [join(REPO_ROOT, "bin/gpufabric.mjs"), "worker", "--config", platform.configFile, "--control-plane", agent.url, "--token-file", join(dir, "token"), "--node", node, "--data-dir", dir, "--inventory", "simulated", "--gpus", "1"],
        { stdio: "ignore", cwd: REPO_ROOT }
      );
      const run = await studio.waitForRun(runId);
      expect(run.status).toBe("succeeded");
      const after = await waitFor("the worker counted as ready", async () => {
        const body = (await studio.get(`/v1/pools/${pool}/demand`)).body;
        return body.readyWorkers === 1 ? body : undefined;
      });
      expect(after).toMatchObject({ desiredWorkers: 1, startingWorkers: 0, waiting: { total: 0 } });
      expect(api.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
      // Every request carried the service account's token (the stand-in answers 401 otherwise).
      expect(readFileSync(join(api.serviceAccountDir, "token"), "utf8")).toBe("control-plane-sa-token");
    },
    TIMEOUT
  );

  it("answers 404 for a pool it does not know, naming the declared ones", async () => {
    const r = await client(agent.url, platform.tokens.studio!).get("/v1/pools/nope/demand");
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: "not-found", field: "pool" });
    expect(r.body.error.message).toMatch(new RegExp(`no pool 'nope': the platform config declares '${pool}'`));
    // A name that is no pool name at all is refused by the route's schema, naming the parameter.
    const bad = await client(agent.url, platform.tokens.studio!).get("/v1/pools/NOT_A_POOL/demand");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/pool: must be a pool's name/);
  });
});
