/**
 * ComfyUI in cluster mode.
 *
 *  - A local cluster on a real PostgreSQL (one control plane, two worker processes whose node names the
 *    pool lacks, as Kubernetes nodes' would be), each worker attached by URL to a stand-in ComfyUI server
 *    named `<node>-g0`: a two-segment prompt queued through the leader's `/comfyui/prompt` runs on the
 *    workers' stand-ins; the leader's `/comfyui/ws` client sees the workers' relayed progress between
 *    execution_start and the final `executing`; `/view` serves the image; `/object_info` is what both
 *    workers' servers offer, and `POST /prompt` checks models against it.
 *  - In-process: the worker's forwarder and the leader's routes (only an open attempt's events pass; a
 *    leader that is away costs dropped, counted events, never an unbounded queue), and how
 *    `comfyui.servers[].gpu` names a worker's GPU.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { loadPlatformConfig } from "../../../runtime/config/index.ts";
import { ValidationError } from "../../../runtime/config/errors.ts";
import { ComfyUiSchema, type PoolConfig } from "../../../runtime/config/schema.ts";
import { LocalCluster, clusterPlatform } from "../../../runtime/agent/cluster/local-cluster.ts";
import { WorkerNode } from "../../../runtime/agent/cluster/worker.ts";
import { ClusterComfy, intersectModels } from "../../../runtime/agent/cluster/comfy-leader.ts";
import { ComfyForwarder } from "../../../runtime/agent/cluster/comfy-forward.ts";
import { WorkerRegistry } from "../../../runtime/agent/cluster/registry.ts";
import { registerClusterRoutes } from "../../../runtime/agent/cluster/routes.ts";
import { ControlPlaneClient } from "../../../runtime/agent/cluster/worker-client.ts";
import { MAX_COMFY_PREVIEW_BYTES } from "../../../runtime/agent/cluster/protocol.ts";
import { ComfyRelay, type ComfyRelayMessage, type ComfyRelayPreview } from "../../../runtime/agent/executors/comfyui/contract.ts";
import { attachedServers } from "../../../runtime/agent/executors/comfyui/server-pool.ts";
import type { AttemptSpec } from "../../../runtime/agent/executors/types.ts";
import { Scheduler } from "../../../runtime/scheduler/scheduler.ts";
import { inventoryFromPools } from "../../../runtime/scheduler/inventory.ts";
import { FileKeyring } from "../../../runtime/security/crypto/index.ts";
import type { Identity } from "../../../runtime/security/identity/index.ts";
import { pngInfo, startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { dropSchema, startTestPostgres, uniqueSchema, type TestPostgres } from "../../support/postgres.ts";
import { createPlatform, removePlatform, waitFor, type TestPlatform } from "../service/harness.ts";
import { twoSegmentPrompt } from "../comfyui/fixtures.ts";

const TIMEOUT = 180_000;
const started = await startTestPostgres();
const server = "skip" in started ? undefined : (started as TestPostgres);
if (!server) console.warn(`note: ComfyUI cluster tests skipped: ${(started as { skip: string }).skip}`);

type WsMessage = { type: string; data: any };

describe.runIf(server !== undefined)("ComfyUI prompts on a local cluster's workers", () => {
  let platform: TestPlatform;
  let cluster: LocalCluster;
  let standins: ComfyStandin[] = [];
  const schema = uniqueSchema("comfy");
  const token = () => platform.tokens.studio!;
  // Two control planes: the leader (the workers' events and reports reach it) and a replica that does not lead.
  let leaderUrl = "";
  let replicaUrl = "";
  const comfyui = (path: string, base = leaderUrl) => `${base}/comfyui${path}`;
  const get = (path: string) => fetch(comfyui(path), { headers: { authorization: `Bearer ${token()}` } });
  /** A /ws client of `clientId`: its JSON messages, and `ended` once the prompt given to `follow` has its final executing. */
  const openSocket = async (url: string, clientId: string) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}?clientId=${clientId}&token=${token()}`);
    const messages: WsMessage[] = [];
    let promptId = "";
    const ended = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no final executing: ${JSON.stringify(messages.map((m) => m.type))}`)), 90_000);
      ws.on("message", (data, binary) => {
        if (binary) return;
        const m = JSON.parse(String(data)) as WsMessage;
        messages.push(m);
        if (m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const follow = (id: string) => (promptId = id);
    return { ws, messages, ended, follow };
  };
  const postPrompt = (body: unknown) =>
    fetch(comfyui("/prompt"), { method: "POST", headers: { authorization: `Bearer ${token()}`, "content-type": "application/json" }, body: JSON.stringify(body) });

  beforeAll(async () => {
    // A class only box-a's server knows: the leader's /object_info must not offer it (a stage may land on box-b).
    standins = [
      await startComfyStandin({ nodeDelayMs: 40, objectInfo: { OnlyOnBoxA: { input: { required: {} }, output: [], output_node: false } } }),
      await startComfyStandin({ nodeDelayMs: 40 }),
    ];
    // Sampling (about 2.5 GiB) and the upscale (about 1.6 GiB) do not fit one 3000 MiB GPU together:
    // the upscale goes to the other worker's GPU, where nothing need be evicted.
    platform = createPlatform({
      devices: [{ id: "g0", node: "n0", memoryMiB: 3_000 }],
      headroomMiB: 0,
      comfyui: ComfyUiSchema.parse({
        servers: [
          { gpu: "box-a-g0", url: standins[0]!.url },
          { gpu: "box-b-g0", url: standins[1]!.url },
        ],
        startTimeoutMs: 30_000,
      }),
    });
    cluster = await LocalCluster.start({
      config: loadPlatformConfig(platform.configFile),
      dataDir: platform.dataDir,
      database: `${server!.url}${server!.url.includes("?") ? "&" : "?"}schema=${schema}`,
      workers: 2,
      controlPlanes: 2,
      gpusPerWorker: 1,
      workerNodes: ["box-a", "box-b"],
      workerLeaseMs: 3000,
      leaderLeaseMs: 3000,
    });
    leaderUrl = (await waitFor("a leader", () => cluster.leader(), 30_000)).url!;
    replicaUrl = cluster.controlPlaneUrls.find((u) => u !== leaderUrl)!;
  }, TIMEOUT);
  afterAll(async () => {
    await cluster?.stop();
    for (const s of standins) await s.close();
    await dropSchema(server!.url, schema).catch(() => undefined);
    await server?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "answers /object_info with what every worker's servers offer, and checks a prompt's models against it",
    async () => {
      // Both workers' reports: the stand-ins' classes (not the planner's table), less what box-b's lacks.
      const info = await waitFor("both workers' introspection at the leader", async () => {
        const body = (await (await get("/object_info")).json()) as Record<string, { category?: string }>;
        return body.KSampler?.category === "sampling" && !Object.hasOwn(body, "OnlyOnBoxA") ? body : undefined;
      }, 30_000);
      expect(Object.keys(info)).toEqual(expect.arrayContaining(["CheckpointLoaderSimple", "KSampler", "VAEDecode", "SaveImage", "LoadImage", "ImageUpscaleWithModel"]));
      expect(await (await get("/models/checkpoints")).json()).toEqual(["v1-5-pruned-emaonly.safetensors"]);
      const missing = await postPrompt({ prompt: twoSegmentPrompt("no-such-model.safetensors"), client_id: randomUUID() });
      expect(missing.status).toBe(400);
      const refusal = (await missing.json()) as { error: { type: string }; node_errors: Record<string, { class_type: string }> };
      expect(refusal.error.type).toBe("prompt_outputs_failed_validation");
      expect(refusal.node_errors["4"]?.class_type).toBe("CheckpointLoaderSimple");
    },
    TIMEOUT
  );

  it(
    "runs a two-segment prompt on both workers' servers and relays their live events to the leader's /ws client",
    async () => {
      const clientId = randomUUID();
      const { ws, messages, ended, follow } = await openSocket(comfyui("/ws"), clientId);
      const before = standins.map((s) => s.prompts().length);
      const res = await postPrompt({ prompt: twoSegmentPrompt(), client_id: clientId });
      expect(res.status).toBe(200);
      const promptId = follow(((await res.json()) as { prompt_id: string }).prompt_id);
      await ended;
      ws.close();

      // One segment on each worker's stand-in.
      expect(standins.map((s, i) => s.prompts().length - before[i]!)).toEqual([1, 1]);
      const ours = messages.filter((m) => m.data?.prompt_id === promptId);
      const types = ours.map((m) => m.type);
      expect(types[0]).toBe("execution_start");
      // Only a worker's relay knows the sampler's steps and the nodes after a segment's first.
      const progress = ours.filter((m) => m.type === "progress");
      expect(progress.length, JSON.stringify(types)).toBeGreaterThan(0);
      expect(progress[0]!.data).toMatchObject({ node: "3", max: 4 });
      const executing = ours.filter((m) => m.type === "executing" && m.data.node !== null).map((m) => m.data.node as string);
      expect(executing).toEqual(expect.arrayContaining(["3", "8", "11"]));
      const executed = ours.find((m) => m.type === "executed" && m.data.node === "9");
      expect(executed, JSON.stringify(types)).toBeDefined();
      expect(types.indexOf("execution_success")).toBeGreaterThan(types.indexOf("executed"));
      expect(ours.at(-1)).toEqual({ type: "executing", data: { node: null, prompt_id: promptId } });
      // Relayed events come before the end: none after execution_success but the final executing.
      expect(types.slice(types.indexOf("execution_success") + 1)).toEqual(["executing"]);

      const image = (executed!.data.output.images as Array<{ filename: string; subfolder: string; type: string }>)[0]!;
      const view = await get(`/view?filename=${encodeURIComponent(image.filename)}&subfolder=${encodeURIComponent(image.subfolder)}&type=${image.type}`);
      expect(view.status).toBe(200);
      const info = pngInfo(Buffer.from(await view.arrayBuffer()));
      expect([info?.width, info?.height]).toEqual([256, 256]);
    },
    TIMEOUT
  );

  it(
    "follows a prompt queued through one control plane on a /ws client of the other, from the events the store records",
    async () => {
      const clientId = randomUUID();
      const { ws, messages, ended, follow } = await openSocket(comfyui("/ws", replicaUrl), clientId);
      const res = await postPrompt({ prompt: twoSegmentPrompt(), client_id: clientId });
      expect(res.status).toBe(200);
      const promptId = follow(((await res.json()) as { prompt_id: string }).prompt_id);
      await ended.catch((err: unknown) => {
        // What the control planes warned of, to see why the replica followed nothing.
        for (const p of cluster.processes.filter((m) => m.role === "control-plane")) {
          console.warn(p.url, readFileSync(p.log, "utf8").split("\n").filter((l) => /"level":(40|50)/.test(l)).slice(-20).join("\n"));
        }
        throw err;
      });
      ws.close();
      const types = messages.filter((m) => m.data?.prompt_id === promptId).map((m) => m.type);
      expect(types[0]).toBe("execution_start");
      expect(types).toContain("executed");
      expect(types.slice(-2)).toEqual(["execution_success", "executing"]);
      // Each event once, though the replica looks at the tenant's open prompts every second.
      expect(types.filter((t) => t === "execution_start")).toHaveLength(1);
      const history = (await (await fetch(comfyui(`/history/${promptId}`, replicaUrl), { headers: { authorization: `Bearer ${token()}` } })).json()) as Record<string, { status: { status_str: string } }>;
      expect(history[promptId]?.status.status_str).toBe("success");
    },
    TIMEOUT
  );
});

const pool: PoolConfig = {
  name: "p",
  gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 24_576 },
  nodes: 4,
  gpusPerNode: 1,
  sharing: { mode: "exclusive" },
  devices: [0, 1, 2, 3].map((n) => ({ id: `n${n}-g0`, node: `n${n}`, index: 0, memoryMiB: 24_576 })),
  nodeSelector: {},
  priorityClasses: { interactive: "i", batch: "b" },
  tenantQuotas: {},
};

describe("a worker's ComfyUI events and introspection, forwarded to the leader", () => {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-comfy-forward-"));
  const logger = pino({ level: "silent" });
  let registry: WorkerRegistry;
  let hub: ClusterComfy;
  let app: FastifyInstance;
  let url: string;
  const heard: { messages: ComfyRelayMessage[]; previews: ComfyRelayPreview[] } = { messages: [], previews: [] };

  beforeAll(async () => {
    registry = new WorkerRegistry({
      pool,
      scheduler: new Scheduler({ gpus: inventoryFromPools([pool]) }),
      epoch: 1,
      leaseMs: 60_000,
      sharedDir: join(dir, "shared"),
      keys: FileKeyring.create(join(dir, "keyring")),
      logger,
      audit: () => undefined,
      onChange: () => undefined,
    });
    hub = new ClusterComfy(() => registry, logger);
    hub.relay.on("message", (m) => heard.messages.push(m));
    hub.relay.on("preview", (p) => heard.previews.push(p));
    // The routes as the API mounts them; the bearer token names the worker (the API's hook checks it).
    app = Fastify();
    app.decorateRequest("identity", null);
    app.addHook("onRequest", async (request) => {
      request.identity = { tenant: "", subject: String(request.headers.authorization).replace("Bearer ", ""), groups: [], method: "token" } satisfies Identity;
    });
    registerClusterRoutes(app, { authenticate: () => ({ ok: false }) as never, registry: () => registry, leaderUrl: async () => null, comfy: hub });
    url = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    registry.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const join1 = (subject: string, node: string) =>
    registry.register(subject, { protocol: 1, node, devices: [{ index: 0, uuid: null, name: "L4", memoryMiB: 24_576, simulated: true }], residentModels: [], isolation: { sandbox: "per-tenant", unsafe: false } });

  async function assigned(subject: string, workerId: string, gpu: string, attemptId: string) {
    const spec: AttemptSpec = {
      attemptId,
      runId: `run-${attemptId}`,
      tenant: "studio",
      stageId: "ksampler-3",
      number: 1,
      stage: { id: "ksampler-3", needs: [], resources: { gpus: 1, vramMiB: 100 } },
      gpus: [{ id: gpu, uuid: null, simulated: true }],
      inputs: [],
    };
    void registry.assign(spec);
    const { assignments } = await registry.poll(subject, { workerId, running: [], waitMs: 2000 });
    return assignments[0]!;
  }

  it("relays an open attempt's messages and previews, and refuses another worker's attempt and oversized previews", async () => {
    const a = join1("worker-a", "n0");
    const b = join1("worker-b", "n1");
    const mine = await assigned("worker-a", a.workerId, "n0-g0", "att-a");
    const theirs = await assigned("worker-b", b.workerId, "n1-g0", "att-b");
    const relay = new ComfyRelay();
    const client = new ControlPlaneClient([url], "worker-a");
    // Worker a's forwarder, which (wrongly) believes it holds worker b's attempt too.
    const held = new Map([
      ["att-a", { workerId: a.workerId, attemptId: "att-a", token: mine.token }],
      ["att-b", { workerId: a.workerId, attemptId: "att-b", token: theirs.token }],
    ]);
    const forwarder = new ComfyForwarder({
      client,
      relay,
      introspection: { objectInfo: async () => null, models: async () => null },
      workerId: () => a.workerId,
      attemptOf: (ref) => (ref.attemptId !== undefined ? held.get(ref.attemptId) : ref.runId === "run-att-a" ? held.get("att-a") : undefined),
      serversState: () => "",
      logger,
    });
    try {
      relay.message({ runId: "run-att-a", stageId: "ksampler-3", attemptId: "att-a", type: "progress", data: { node: "3", value: 1, max: 4 } });
      relay.message({ runId: "run-att-b", stageId: "ksampler-3", attemptId: "att-b", type: "executing", data: { node: "3" } });
      relay.preview({ runId: "run-att-a", stageId: "ksampler-3", eventType: 1, payload: Buffer.from([0, 0, 0, 2, 0x89, 0x50]) });
      relay.preview({ runId: "run-att-a", stageId: "ksampler-3", eventType: 1, payload: Buffer.alloc(MAX_COMFY_PREVIEW_BYTES + 1) });
      await forwarder.flush();
      // The leader names run and stage from its own record of the attempt, not from the worker's word.
      expect(heard.messages).toEqual([{ runId: "run-att-a", stageId: "ksampler-3", attemptId: "att-a", type: "progress", data: { node: "3", value: 1, max: 4 } }]);
      expect(heard.previews.map((p) => [p.runId, p.eventType, [...p.payload]])).toEqual([["run-att-a", 1, [0, 0, 0, 2, 0x89, 0x50]]]);
      expect(forwarder.stats).toMatchObject({ sent: 2, refused: 1, dropped: 1 });
      // Another worker's token cannot speak for a live worker it is not.
      const forged = await new ControlPlaneClient([url], "worker-b").post<{ message?: string }>(
        "/v1/cluster/comfy-events",
        { workerId: a.workerId, events: [{ kind: "message", token: mine.token, attemptId: "att-a", type: "executing", data: { node: "4" } }] },
        5000
      );
      expect(forged.status).toBe(410);
      expect(heard.messages).toHaveLength(1);
    } finally {
      forwarder.stop();
      client.close();
    }
  });

  it("reports what the servers offer on change only, and answers the intersection over live workers", async () => {
    const a = join1("worker-c", "n2");
    const b = join1("worker-d", "n3");
    expect(await hub.introspection.objectInfo()).toBeNull();
    let state = "g0:1";
    const offers: Record<string, { objectInfo: Record<string, unknown>; models: Record<string, string[]> }> = {
      c: { objectInfo: { KSampler: { category: "sampling" }, OnlyC: {} }, models: { checkpoints: ["x.safetensors", "y.safetensors"], loras: [] } },
      d: { objectInfo: { KSampler: { category: "sampling" }, OnlyD: {} }, models: { checkpoints: ["y.safetensors"] } },
    };
    const forwarders = (["c", "d"] as const).map(
      (w) =>
        new ComfyForwarder({
          client: new ControlPlaneClient([url], `worker-${w}`),
          relay: new ComfyRelay(),
          introspection: { objectInfo: async () => offers[w]!.objectInfo, models: async () => offers[w]!.models },
          workerId: () => (w === "c" ? a.workerId : b.workerId),
          attemptOf: () => undefined,
          serversState: () => state,
          logger,
          introspectEveryMs: 60_000,
        })
    );
    try {
      for (const f of forwarders) await f.introspect();
      expect(Object.keys((await hub.introspection.objectInfo())!)).toEqual(["KSampler"]);
      expect(await hub.introspection.models()).toEqual({ checkpoints: ["y.safetensors"] });
      // Nothing changed: nothing is sent again. A server restarted with the same offer: looked at, not sent.
      await forwarders[0]!.introspect();
      state = "g0:2";
      await forwarders[0]!.introspect();
      expect(forwarders[0]!.stats.reports).toBe(1);
      // A restarted server offers more: sent, and the intersection follows.
      offers.d!.objectInfo.OnlyC = {};
      state = "g0:3";
      await forwarders[1]!.introspect();
      expect(forwarders[1]!.stats.reports).toBe(2);
      expect(Object.keys((await hub.introspection.objectInfo())!).sort()).toEqual(["KSampler", "OnlyC"]);
    } finally {
      for (const f of forwarders) f.stop();
    }
  });

  it("drops and counts events while the leader is away, holding at most the queue's bound", async () => {
    const relay = new ComfyRelay();
    // A port nothing listens on.
    const away = Fastify();
    const awayUrl = await away.listen({ host: "127.0.0.1", port: 0 });
    await away.close();
    const client = new ControlPlaneClient([awayUrl], "worker-a");
    const forwarder = new ComfyForwarder({
      client,
      relay,
      introspection: { objectInfo: async () => null, models: async () => null },
      workerId: () => "w",
      attemptOf: () => ({ workerId: "w", attemptId: "att", token: "t".repeat(32) }),
      serversState: () => "",
      logger,
      maxQueued: 100,
      flushMs: 10_000,
    });
    try {
      for (let i = 0; i < 1000; i++) relay.message({ runId: "r", stageId: "s", attemptId: "att", type: "progress", data: { node: "3", value: i, max: 1000 } });
      // The bound holds before anything is sent: 900 gave way to newer ones.
      expect(forwarder.stats.dropped).toBe(900);
      await forwarder.flush();
      expect(forwarder.stats).toMatchObject({ sent: 0, dropped: 1000 });
    } finally {
      forwarder.stop();
      client.close();
    }
  });
});

describe("comfyui.servers[].gpu on a worker", () => {
  const gpus = [
    { id: "batch-n0-g0", index: 0, aliases: ["box-a-g0"] },
    { id: "batch-n0-g1", index: 1, aliases: ["box-a-g1"] },
  ];

  it("names a GPU by the pool's id, by <node>-g<index> as the worker names itself, or by CUDA index; other machines' entries are left alone", () => {
    const found = attachedServers(
      [
        { gpu: "box-a-g1", url: "http://127.0.0.1:8189" },
        { gpu: "0", url: "http://127.0.0.1:8188" },
        { gpu: "box-b-g0", url: "http://127.0.0.1:9000" },
      ],
      gpus
    );
    expect([...found].map(([id, s]) => [id, s.url])).toEqual([
      ["batch-n0-g1", "http://127.0.0.1:8189"],
      ["batch-n0-g0", "http://127.0.0.1:8188"],
    ]);
  });

  it("refuses two entries for one GPU, naming the field", () => {
    let caught: unknown;
    try {
      attachedServers([{ gpu: "batch-n0-g0", url: "http://127.0.0.1:8188" }, { gpu: "0", url: "http://127.0.0.1:8190" }], gpus);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).issues[0]).toMatchObject({ field: "comfyui.servers[1].gpu", message: expect.stringMatching(/servers\[0\]/) });
  });

  it("keeps a worker to which no entry resolves from starting, naming the field and the names it accepts", async () => {
    const platform = createPlatform({
      devices: [{ id: "g0", node: "n0", memoryMiB: 3_000 }],
      comfyui: ComfyUiSchema.parse({ servers: [{ gpu: "box-a-g0", url: "http://127.0.0.1:8188" }] }),
    });
    try {
      const config = clusterPlatform(loadPlatformConfig(platform.configFile), { dataDir: platform.dataDir, workers: 1, controlPlanes: 1, gpusPerWorker: 1 });
      const start = WorkerNode.start({
        config,
        controlPlanes: ["http://127.0.0.1:9"],
        token: "t",
        node: "box-z",
        dataDir: join(platform.dir, "worker"),
        inventory: "simulated",
        unsafeSharedIdentity: true,
        logger: pino({ level: "silent" }),
      });
      await expect(start).rejects.toThrow(ValidationError);
      await expect(start).rejects.toMatchObject({ issues: [{ field: "comfyui.servers", message: expect.stringContaining("'box-z-g<index>'") }] });
    } finally {
      removePlatform(platform);
    }
  });

  it("intersects model folders (a folder one worker lacks is left out)", () => {
    expect(intersectModels([{ a: ["1", "2"], b: ["1"] }, { a: ["2"] }])).toEqual({ a: ["2"] });
  });
});
