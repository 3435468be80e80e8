/**
 * Integration tests: the real agent process on loopback, driven over HTTP. Assertions are about
 * states, artifacts and orderings (stage start/finish timestamps), never about how long things take.
 */
import { readFileSync, readdirSync } from "node:fs";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module of the example stages, without types
import { decodePng } from "../../../examples/workflows/stages/png.mjs";
import {
  PHI_ISOLATION_RULE,
  client,
  createPlatform,
  sleepyWorkflow,
  startAgentProcess,
  tenant,
  waitFor,
  type AgentProcess,
  type TestPlatform,
  removePlatform,
} from "./harness.ts";

const TIMEOUT = 180_000;

interface StageView {
  id: string;
  status: string;
  gpus: string[];
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Host pids of the processes whose command line holds `token`. */
function processesWith(token: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(token) && alive(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

const interval = (s: StageView) => [Date.parse(s.startedAt!), Date.parse(s.finishedAt!)] as const;
const overlaps = (a: StageView, b: StageView) => interval(a)[0] < interval(b)[1] && interval(b)[0] < interval(a)[1];

describe("agent on an exclusive pool of two GPUs", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;
  let rival: ReturnType<typeof client>;

  beforeAll(async () => {
    platform = createPlatform({
      devices: [
        { id: "local-g0", node: "n0", memoryMiB: 24_576 },
        { id: "local-g1", node: "n0", memoryMiB: 24_576 },
      ],
    });
    agent = await startAgentProcess(platform);
    studio = client(agent.url, platform.tokens.studio!);
    rival = client(agent.url, platform.tokens.rival!);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "runs the contact-sheet workflow to success with real PNG artifacts, its parallel branches overlapping on different GPUs",
    async () => {
      const submitted = await studio.post("/v1/runs", { workflowRef: "contact-sheet" });
      expect(submitted.status).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run.stages.filter((s: any) => s.status !== "succeeded"))).toBe("succeeded");
      expect(run.tenant).toBe("studio");
      expect(run.stages).toHaveLength(10);
      for (const stage of run.stages) expect(stage.status).toBe("succeeded");

      const byId = new Map<string, StageView>(run.stages.map((s: StageView) => [s.id, s]));
      // Dependencies are honoured: every stage starts after the stages it needs finished.
      for (const stage of run.stages)
        for (const need of stage.needs) expect(interval(byId.get(stage.id)!)[0]).toBeGreaterThanOrEqual(interval(byId.get(need)!)[1]);
      // GPU stages ran on the pool's (simulated, and labelled so) devices; CPU stages on none.
      expect(byId.get("prompt")!.gpus).toEqual([]);
      expect(run.simulated).toBe(true);
      const gpuStages = run.stages.filter((s: StageView) => s.id.startsWith("render-") || s.id.startsWith("upscale-"));
      for (const s of gpuStages) expect(["local-g0", "local-g1"]).toContain(s.gpus[0]);
      // Parallel branches overlapped in time, and stages that overlapped never shared an exclusive GPU.
      const overlapping = gpuStages.flatMap((a: StageView, i: number) =>
        gpuStages
          .slice(i + 1)
          .filter((b: StageView) => overlaps(a, b))
          .map((b: StageView) => [a, b])
      );
      expect(overlapping.length).toBeGreaterThan(0);
      for (const [a, b] of overlapping) expect(a.gpus[0]).not.toBe(b.gpus[0]);

      // Artifacts: a real PNG contact sheet whose size matches its own layout file.
      const names = run.artifacts.map((a: { name: string }) => a.name).sort();
      expect(names).toContain("contact-sheet.png");
      expect(names).toContain("scenes.json");
      const layout = await studio.get(`/v1/runs/${run.id}/artifacts/contact-sheet.json`);
      expect(layout.status).toBe(200);
      const png = await studio.raw(`/v1/runs/${run.id}/artifacts/contact-sheet.png`);
      expect(png.status).toBe(200);
      expect(png.headers.get("content-type")).toBe("image/png");
      const image = decodePng(Buffer.from(await png.arrayBuffer()));
      expect([image.width, image.height]).toEqual([layout.body.width, layout.body.height]);
      expect(layout.body.images).toHaveLength(4);

      const logs = await studio.get(`/v1/runs/${run.id}/stages/render-1/logs`);
      expect(logs.status).toBe(200);
      expect(logs.body.attempt).toBe(1);

      // The event stream replays the run's history and ends with its outcome.
      const events = await studio.raw(`/v1/runs/${run.id}/events`);
      expect(events.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const text = await events.text();
      expect(text).toMatch(/event: run\.accepted/);
      expect(text.match(/event: stage\.succeeded/g)).toHaveLength(10);
      expect(text.trimEnd()).toMatch(/event: run\.succeeded\ndata: .*$/);
    },
    TIMEOUT
  );

  it(
    "answers another tenant's run ids with 404, everywhere",
    async () => {
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("private", [{ id: "only", ms: 50 }]) });
      expect(submitted.status).toBe(202);
      const id = submitted.body.id;
      for (const path of [`/v1/runs/${id}`, `/v1/runs/${id}/events`, `/v1/runs/${id}/artifacts/only.txt`, `/v1/runs/${id}/stages/only/logs`]) {
        const answer = await rival.get(path);
        expect(answer.status, path).toBe(404);
        expect(answer.body.error.code).toBe("not-found");
      }
      expect((await rival.post(`/v1/runs/${id}/cancel`)).status).toBe(404);
      expect((await rival.get("/v1/runs")).body.runs.map((r: { id: string }) => r.id)).not.toContain(id);
      // The owner still sees it, and it finishes.
      expect((await studio.waitForRun(id)).status).toBe("succeeded");
    },
    TIMEOUT
  );

  it(
    "refuses missing and bad tokens with 401 but serves the probes without one",
    async () => {
      const anonymous = client(agent.url, undefined);
      expect((await anonymous.get("/healthz")).status).toBe(200);
      expect((await anonymous.get("/readyz")).status).toBe(200);
      const missing = await anonymous.get("/v1/runs");
      expect(missing.status).toBe(401);
      expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await client(agent.url, `gf_${"A".repeat(43)}`).get("/v1/gpus")).status).toBe(401);
      expect(agent.output()).not.toContain(platform.tokens.studio);
    },
    TIMEOUT
  );

  it(
    "answers malformed requests with 4xx naming the field or node",
    async () => {
      const malformedJson = await studio.post("/v1/runs", "{ not json");
      expect(malformedJson.status).toBe(400);
      expect(malformedJson.body.error.code).toBe("malformed-json");

      const neither = await studio.post("/v1/runs", { priority: "batch" });
      expect(neither.status).toBe(400);
      expect(neither.body.error.field).toBe("workflow");

      const badPriority = await studio.post("/v1/runs", { workflowRef: "contact-sheet", priority: "urgent" });
      expect(badPriority.status).toBe(400);
      expect(badPriority.body.error.field).toBe("priority");

      const unknownRef = await studio.post("/v1/runs", { workflowRef: "no-such-flow" });
      expect(unknownRef.status).toBe(400);
      expect(unknownRef.body.error.field).toBe("workflowRef");

      const cycle = sleepyWorkflow("cycle", [
        { id: "a", needs: ["b"] },
        { id: "b", needs: ["a"] },
      ]);
      const cyclic = await studio.post("/v1/runs", { workflow: cycle });
      expect(cyclic.status).toBe(400);
      expect(cyclic.body.error.field).toMatch(/^workflow\.spec\.stages\[\d\]/);
      expect(cyclic.body.error.message).toMatch(/cycle|itself|depends/i);

      const schema = await studio.post("/v1/runs", {
        workflow: { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "x" }, spec: { stages: [{ id: "a", resources: { gpus: "two" } }] } },
      });
      expect(schema.status).toBe(400);
      expect(schema.body.error.field).toMatch(/^workflow\.spec\.stages\[0\]\.resources/);

      const tooLarge = await studio.post("/v1/runs", { workflow: sleepyWorkflow("huge", [{ id: "giant", vram: "40Gi" }]) });
      expect(tooLarge.status).toBe(422);
      expect(tooLarge.body.error.field).toBe("workflow.spec.stages[0].resources");
      expect(tooLarge.body.error.message).toMatch(/giant/);

      const comfyTooLarge = await studio.post("/v1/runs", {
        workflow: {
          "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "flux1-dev.safetensors" } },
          "2": { class_type: "EmptyLatentImage", inputs: { width: 4096, height: 4096, batch_size: 16 } },
          "3": {
            class_type: "KSampler",
            inputs: {
              model: ["1", 0],
              positive: ["1", 1],
              negative: ["1", 1],
              latent_image: ["2", 0],
              seed: 1,
              steps: 20,
              cfg: 7,
              sampler_name: "euler",
              scheduler: "normal",
              denoise: 1,
            },
          },
        },
      });
      // Sixteen 4096² latents through a large checkpoint need far more than a 24 GiB GPU: refused, naming the nodes.
      expect(comfyTooLarge.status).toBe(422);
      expect(comfyTooLarge.body.error.field).toBe('workflow["1"]');
      expect(comfyTooLarge.body.error.message).toMatch(/ComfyUI nodes 1, 2, 3/);

      const oversized = await announceOversizedBody(agent.url, platform.tokens.studio!, 5 * 1024 * 1024);
      expect(oversized.status).toBe(413);
      expect(JSON.parse(oversized.body).error.code).toBe("body-too-large");

      const badKey = await studio.post("/v1/runs", { workflowRef: "contact-sheet" }, { "idempotency-key": "has spaces in it" });
      expect(badKey.status).toBe(400);
      expect(badKey.body.error.field).toBe("Idempotency-Key");

      const badId = await studio.get("/v1/runs/..%2f..%2fetc");
      expect(badId.status).toBeGreaterThanOrEqual(400);
      expect(badId.status).toBeLessThan(500);

      // The agent survived all of it.
      expect((await studio.get("/healthz")).status).toBe(200);
    },
    TIMEOUT
  );

  it(
    "returns the same run for a resubmission with the same Idempotency-Key",
    async () => {
      const body = { workflow: sleepyWorkflow("once", [{ id: "only", ms: 50 }]) };
      const first = await studio.post("/v1/runs", body, { "idempotency-key": "order-4711" });
      const again = await studio.post("/v1/runs", body, { "idempotency-key": "order-4711" });
      expect(first.status).toBe(202);
      expect(again.status).toBe(202);
      expect(again.body.id).toBe(first.body.id);
      expect(again.headers.get("idempotent-replayed")).toBe("true");
      // Keys are per tenant: the other tenant's identical key makes its own run.
      const other = await rival.post("/v1/runs", body, { "idempotency-key": "order-4711" });
      expect(other.body.id).not.toBe(first.body.id);
      await studio.waitForRun(first.body.id);
    },
    TIMEOUT
  );

  it(
    "retries a failed stage as a new attempt in a fresh workspace, and fails the run after the last attempt",
    async () => {
      // Fails on its first attempt (leaving a file in its working folder), succeeds on the second if that folder is fresh.
      // (A sandboxed stage can write nowhere but its own folders: the attempt number tells it which try it is.)
      const flaky = [
        `const fs = require("fs");`,
        `if (fs.existsSync("leftover.txt")) { console.error("workspace was reused"); process.exit(3); }`,
        `fs.writeFileSync("leftover.txt", "x");`,
        `if (process.env.GPUFABRIC_ATTEMPT === "1") { console.error("first attempt fails"); process.exit(7); }`,
        `fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/ok.txt", "attempt " + process.env.GPUFABRIC_ATTEMPT);`,
      ].join("\n");
      // No backoff between attempts here (retry.test.ts checks the backoff): the test is about fresh workspaces.
      const noBackoff = (wf: Record<string, unknown>) => ({ ...wf, spec: { ...(wf.spec as object), retry: { backoffSeconds: 0 } } });
      const retried = await studio.post("/v1/runs", { workflow: noBackoff(sleepyWorkflow("flaky", [{ id: "flaky", script: flaky }])) });
      const run = await studio.waitForRun(retried.body.id);
      expect(run.status).toBe("succeeded");
      expect(run.stages[0].attempts).toBe(2);
      const ok = await studio.get(`/v1/runs/${run.id}/artifacts/ok.txt`);
      expect(ok.body).toBe("attempt 2");
      const firstLogs = await studio.get(`/v1/runs/${run.id}/stages/flaky/logs?attempt=1`);
      expect(firstLogs.body.stderr).toContain("first attempt fails");

      const broken = await studio.post("/v1/runs", {
        workflow: noBackoff(
          sleepyWorkflow("broken", [
            { id: "always", script: "process.exit(9)" },
            { id: "never", needs: ["always"] },
          ])
        ),
      });
      const failed = await studio.waitForRun(broken.body.id);
      expect(failed.status).toBe("failed");
      const always = failed.stages.find((s: StageView) => s.id === "always");
      expect(always.attempts).toBe(3);
      expect(always.exitCode).toBe(9);
      expect(failed.stages.find((s: StageView) => s.id === "never").attempts).toBe(0);
    },
    TIMEOUT
  );

  it(
    "shows its GPUs as simulated, and metrics with gpufabric_ names of the caller's tenant only",
    async () => {
      const gpus = await studio.get("/v1/gpus");
      expect(gpus.status).toBe(200);
      expect(gpus.body.source).toBe("simulated");
      expect(gpus.body.gpus.map((g: { id: string; simulated: boolean; uuid: string | null }) => [g.id, g.simulated, g.uuid])).toEqual([
        ["local-g0", true, null],
        ["local-g1", true, null],
      ]);
      await rival.post("/v1/runs", { workflow: sleepyWorkflow("rival-run", [{ id: "only", ms: 10 }]) });
      const metrics = await studio.raw("/metrics");
      expect(metrics.status).toBe(200);
      const text = await metrics.text();
      for (const name of [
        "gpufabric_runs_submitted_total",
        "gpufabric_queue_stages",
        "gpufabric_running_stages",
        "gpufabric_gpu_memory_total_bytes",
        "gpufabric_stage_duration_seconds",
        "gpufabric_stage_dispatch_seconds",
      ]) {
        expect(text).toContain(`# TYPE ${name} `);
      }
      expect(text).toMatch(/gpufabric_runs_submitted_total\{tenant="studio"\} \d+/);
      expect(text).toMatch(/gpufabric_gpu_memory_total_bytes\{gpu="local-g0",simulated="true"\} \d+/);
      expect(text).not.toContain('tenant="rival"');
      expect((await client(agent.url, undefined).get("/metrics")).status).toBe(401);
    },
    TIMEOUT
  );

  it(
    "cancel stops the running process group, children included",
    async () => {
      // The stage and its child carry a token in their command lines: the test finds them on the host by it
      // (inside the sandbox's PID namespace their pids mean nothing out here).
      const token = `cancel-me-${Date.now()}`;
      const childScript = `setTimeout(() => {}, 600000) // ${token}`;
      const script = [
        `const { spawn } = require("child_process");`,
        `spawn(process.execPath, ["-e", ${JSON.stringify(childScript)}], { stdio: "ignore" });`,
        `setTimeout(() => {}, 600000); // ${token}`,
      ].join("\n");
      const submitted = await studio.post("/v1/runs", {
        workflow: sleepyWorkflow("long", [
          { id: "forever", script },
          { id: "after", needs: ["forever"] },
        ]),
      });
      expect(submitted.status).toBe(202);
      const pids = await waitFor("the stage and its child to start", () => {
        const found = processesWith(token);
        const childUp = found.some((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[2] === childScript);
        return childUp ? found : undefined;
      });
      for (const pid of pids) expect(alive(pid)).toBe(true);
      const cancelled = await studio.post(`/v1/runs/${submitted.body.id}/cancel`);
      expect(cancelled.status).toBe(202);
      expect(cancelled.body.status).toBe("cancelled");
      await waitFor("the stage's processes to end", () => pids.every((pid) => !alive(pid)), 60_000);
      const run = await studio.waitForRun(submitted.body.id, ["cancelled"]);
      expect(run.stages.find((s: StageView) => s.id === "after").status).toBe("cancelled");
      expect(run.stages.find((s: StageView) => s.id === "after").attempts).toBe(0);
      // The GPU it held is free again for other work.
      const next = await studio.post("/v1/runs", {
        workflow: sleepyWorkflow("next", [
          { id: "a", ms: 10 },
          { id: "b", ms: 10 },
        ]),
      });
      expect((await studio.waitForRun(next.body.id)).status).toBe("succeeded");
    },
    TIMEOUT
  );
});

describe("agent on a time-sliced GPU", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;

  beforeAll(async () => {
    platform = createPlatform({
      devices: [{ id: "shared-g0", node: "n0", memoryMiB: 16_384 }],
      sharing: { mode: "time-slicing", replicas: 4 },
      tenants: [tenant("studio"), tenant("clinic", "phi")],
      runtimeRules: [PHI_ISOLATION_RULE],
    });
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "lets stages share the GPU only while their memory fits: a stage too large for what is free waits",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const vram: Record<string, number> = { "big-a": 10_240, "big-b": 10_240, "small-1": 3_072, "small-2": 3_072 };
      const workflow = sleepyWorkflow("memory", [
        { id: "big-a", vram: "10Gi", ms: 2500 },
        { id: "big-b", vram: "10Gi", ms: 2500 },
        { id: "small-1", vram: "3Gi", ms: 2500 },
        { id: "small-2", vram: "3Gi", ms: 2500 },
      ]);
      const submitted = await studio.post("/v1/runs", { workflow });
      expect(submitted.status).toBe(202);
      // While it runs, one of the large stages is reported waiting for memory.
      const reason = await waitFor("a stage waiting for memory", async () => {
        const queue = await studio.get("/v1/queue");
        return queue.body.waiting.find((w: { wait: { code: string } }) => w.wait.code === "no-fit");
      });
      expect(reason.stageId).toMatch(/^big-/);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      const stages: StageView[] = run.stages;
      expect(overlaps(stages.find((s) => s.id === "big-a")!, stages.find((s) => s.id === "big-b")!)).toBe(false);
      // At every start, the stages running then fit the GPU's 16 GiB together.
      for (const s of stages) {
        const at = interval(s)[0];
        const together = stages.filter((o) => interval(o)[0] <= at && at < interval(o)[1]).reduce((sum, o) => sum + vram[o.id]!, 0);
        expect(together).toBeLessThanOrEqual(16_384);
      }
      // Small stages did share the GPU with a large one.
      expect(stages.some((s) => s.id.startsWith("small-") && stages.some((o) => o.id.startsWith("big-") && overlaps(s, o)))).toBe(true);
    },
    TIMEOUT
  );

  it(
    "refuses a phi tenant's run on the time-sliced pool with 403 and the rule id",
    async () => {
      const clinic = client(agent.url, platform.tokens.clinic!);
      const refused = await clinic.post("/v1/runs", { workflow: sleepyWorkflow("scan", [{ id: "only" }]) });
      expect(refused.status).toBe(403);
      expect(refused.body.error.rule).toBe("hipaa/phi-isolated-gpu");
      expect(refused.body.error.message).toContain("hipaa/phi-isolated-gpu");
      expect((await clinic.get("/v1/runs")).body.runs).toEqual([]);
    },
    TIMEOUT
  );
});

describe("agent with preemption 'kill' on one GPU", () => {
  it(
    "stops a running batch stage for an interactive one, then reruns it as a new attempt",
    async () => {
      const platform = createPlatform({ devices: [{ id: "only-g0", node: "n0", memoryMiB: 24_576 }], preemption: "kill" });
      const agent = await startAgentProcess(platform);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const batch = await studio.post("/v1/runs", { workflow: sleepyWorkflow("batch", [{ id: "long", ms: 5000 }]), priority: "batch" });
        await waitFor("the batch stage to run", async () => (await studio.get(`/v1/runs/${batch.body.id}`)).body.stages[0].status === "running");
        const urgent = await studio.post("/v1/runs", { workflow: sleepyWorkflow("urgent", [{ id: "now", ms: 100 }]), priority: "interactive" });
        const done = await studio.waitForRun(urgent.body.id);
        expect(done.status).toBe("succeeded");
        const batchRun = await studio.waitForRun(batch.body.id);
        expect(batchRun.status).toBe("succeeded");
        const long: StageView = batchRun.stages[0];
        expect(long.attempts).toBe(2);
        // The interactive stage ran while the batch stage's work was still to be done.
        expect(Date.parse(done.stages[0].finishedAt)).toBeLessThanOrEqual(Date.parse(long.startedAt!));
        const events = String((await studio.get(`/v1/runs/${batch.body.id}/events`)).body);
        expect(events).toMatch(/event: stage\.retrying\ndata: .*preempted/);
        expect(batchRun.artifacts.map((a: { name: string }) => a.name)).toEqual(["long.txt"]);
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});

describe("agent killed with SIGKILL mid-run", () => {
  it(
    "completes every accepted run exactly once in effect after a restart",
    async () => {
      const platform = createPlatform({
        devices: [
          { id: "g0", node: "n0", memoryMiB: 24_576 },
          { id: "g1", node: "n0", memoryMiB: 24_576 },
        ],
      });
      let agent = await startAgentProcess(platform);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await studio.post("/v1/runs", {
            workflow: sleepyWorkflow(`crash-${i}`, [
              { id: "first", ms: 1500 },
              { id: "second", needs: ["first"], ms: 1500 },
              { id: "third", needs: ["second"], ms: 300 },
            ]),
          });
          expect(r.status).toBe(202);
          ids.push(r.body.id);
        }
        // Kill it while at least one stage process is running.
        await waitFor("a running stage", async () => (await studio.get("/v1/gpus")).body.gpus.some((g: { running: unknown[] }) => g.running.length > 0));
        await agent.crash();

        agent = await startAgentProcess(platform);
        const after = client(agent.url, platform.tokens.studio!);
        for (const id of ids) {
          const run = await after.waitForRun(id);
          expect(run.status).toBe("succeeded");
          for (const stage of run.stages) expect(stage.status).toBe("succeeded");
          // Exactly one committed output per stage, whatever was interrupted.
          expect(run.artifacts.map((a: { name: string }) => a.name).sort()).toEqual(["first.txt", "second.txt", "third.txt"]);
          const detail = await after.get(`/v1/runs/${id}/events`);
          expect(String(detail.body).match(/event: stage\.succeeded/g)).toHaveLength(3);
        }
        const interrupted = (
          await Promise.all(ids.map(async (id) => String((await after.get(`/v1/runs/${id}/events`)).body).match(/event: stage\.interrupted/g)?.length ?? 0))
        ).reduce((a, b) => a + b, 0);
        expect(interrupted).toBeGreaterThan(0);
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});

/**
 * Announces a body larger than the agent's limit and sends only its start: the agent must answer 413
 * from the Content-Length alone (sending it all would race the agent closing the connection).
 */
function announceOversizedBody(url: string, token: string, bytes: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/runs`,
      { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": bytes } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      }
    );
    req.on("error", (err) =>
      (err as NodeJS.ErrnoException).code === "ECONNRESET" || (err as NodeJS.ErrnoException).code === "EPIPE" ? undefined : reject(err)
    );
    req.write(`{"workflow": {"padding": "${"x".repeat(1024)}`);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
