/**
 * Retries in the real agent process: a stage's retry policy (attempts, backoffSeconds,
 * nonRetryableExitCodes), the backoff seen through the API, and a backoff carried over a restart.
 * Spacing is asserted as a floor (the backoff), never as an upper bound.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;

/** A one-stage workflow running `script` (Node), with the stage's retry policy. */
function withRetry(name: string, script: string, retry: Record<string, unknown>, more: Array<{ id: string; needs?: string[] }> = []) {
  const doc = sleepyWorkflow(name, [{ id: "flaky", script }, ...more.map((m) => ({ ...m, ms: 10 }))]) as { spec: { stages: Array<Record<string, unknown>> } };
  doc.spec.stages[0]!.retry = retry;
  return doc;
}

/** Prints when the attempt started (stderr, kept in its logs); attempts below `succeedFrom` exit with `code`. */
const failingUntil = (succeedFrom: number, code = 1) =>
  [
    `const n = Number(process.env.GPUFABRIC_ATTEMPT);`,
    `console.error("attempt " + n + " started at " + Date.now());`,
    `if (n < ${succeedFrom}) process.exit(${code});`,
    `require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/ok.txt", "attempt " + n);`,
  ].join("\n");

describe("agent retries with a stage's retry policy", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;

  const startedAt = async (runId: string, attempt: number): Promise<number> => {
    const logs = await studio.get(`/v1/runs/${runId}/stages/flaky/logs?attempt=${attempt}`);
    const match = /attempt \d+ started at (\d+)/.exec(String(logs.body.stderr));
    expect(match, JSON.stringify(logs.body)).not.toBeNull();
    return Number(match![1]);
  };

  beforeAll(async () => {
    // One GPU: a stage backing off must leave it to other work.
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    agent = await startAgentProcess(platform);
    studio = client(agent.url, platform.tokens.studio!);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "retries a stage that exits 1 twice, each attempt after the backoff (doubled the second time), and it succeeds on the third",
    async () => {
      const submitted = await studio.post("/v1/runs", { workflow: withRetry("flaky-backoff", failingUntil(3), { attempts: 3, backoffSeconds: 1 }) });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      expect(run.stages[0].attempts).toBe(3);
      const [t1, t2, t3] = [await startedAt(run.id, 1), await startedAt(run.id, 2), await startedAt(run.id, 3)];
      // backoffSeconds × 2^(n-1) is a floor: 1 s before the second attempt, 2 s before the third.
      expect(t2 - t1).toBeGreaterThanOrEqual(1000);
      expect(t3 - t2).toBeGreaterThanOrEqual(2000);
      expect((await studio.get(`/v1/runs/${run.id}/artifacts/ok.txt`)).body).toBe("attempt 3");
    },
    TIMEOUT
  );

  it(
    "fails the stage and its run after one attempt on an exit code listed in nonRetryableExitCodes",
    async () => {
      const submitted = await studio.post("/v1/runs", {
        workflow: withRetry("bad-input", failingUntil(99, 64), { attempts: 5, backoffSeconds: 0, nonRetryableExitCodes: [64] }, [{ id: "after", needs: ["flaky"] }]),
      });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("failed");
      const flaky = run.stages.find((s: { id: string }) => s.id === "flaky");
      expect(flaky.attempts).toBe(1);
      expect(flaky.exitCode).toBe(64);
      expect(flaky.reason).toContain("exit code 64 is listed in retry.nonRetryableExitCodes");
      expect(run.stages.find((s: { id: string }) => s.id === "after").attempts).toBe(0);
    },
    TIMEOUT
  );

  it(
    "shows a stage backing off in GET /v1/queue and the run view, holding no GPU meanwhile",
    async () => {
      const failedAt = Date.now();
      const submitted = await studio.post("/v1/runs", { workflow: withRetry("long-backoff", failingUntil(99), { attempts: 2, backoffSeconds: 60 }) });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const runId = submitted.body.id as string;
      const entry = await waitFor("the stage backing off in the queue", async () => {
        const queue = await studio.get("/v1/queue");
        return (queue.body.waiting as Array<{ runId: string; stageId: string; reason: string; wait: { code: string; until: number } }>).find(
          (w) => w.runId === runId && w.wait.code === "backoff"
        );
      });
      expect(entry.stageId).toBe("flaky");
      // 60 s from the failure, plus up to 50% jitter.
      expect(entry.wait.until * 1000).toBeGreaterThanOrEqual(failedAt + 60_000);
      expect(entry.wait.until * 1000).toBeLessThanOrEqual(Date.now() + 90_000);
      expect(entry.reason).toContain("waits until");
      const view = (await studio.get(`/v1/runs/${runId}`)).body;
      expect(view.stages[0].status).toBe("ready");
      expect(view.stages[0].reason).toMatch(/waits until .*; last attempt: /);

      // The only GPU is free for other work while the stage backs off.
      const other = await studio.post("/v1/runs", { workflow: sleepyWorkflow("meanwhile", [{ id: "only", ms: 50 }]) });
      expect((await studio.waitForRun(other.body.id)).status).toBe("succeeded");
      expect((await studio.get(`/v1/runs/${runId}`)).body.stages[0].attempts).toBe(1);

      expect((await studio.post(`/v1/runs/${runId}/cancel`)).status).toBeLessThan(300);
      expect((await studio.waitForRun(runId)).status).toBe("cancelled");
      const queue = await studio.get("/v1/queue");
      expect(queue.body.waiting.filter((w: { runId: string }) => w.runId === runId)).toEqual([]);
    },
    TIMEOUT
  );

  it(
    "keeps the backoff owed by a failure over a restart: the next attempt waits for the remaining time",
    async () => {
      const submitted = await studio.post("/v1/runs", { workflow: withRetry("restart-backoff", failingUntil(2), { attempts: 3, backoffSeconds: 15 }) });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const runId = submitted.body.id as string;
      const failed = await waitFor("the first attempt's failure", async () => {
        const view = (await studio.get(`/v1/runs/${runId}`)).body;
        return view.stages[0].attempts === 1 && view.stages[0].status === "ready" && view.stages[0].finishedAt !== null ? view : undefined;
      });
      const firstEnded = Date.parse(failed.stages[0].finishedAt);
      await agent.stop();
      agent = await startAgentProcess(platform);
      studio = client(agent.url, platform.tokens.studio!);
      const run = await studio.waitForRun(runId);
      expect(run.status).toBe("succeeded");
      expect(run.stages[0].attempts).toBe(2);
      // Neither restarted from zero nor dropped: the second attempt starts once 15 s passed since the first ended.
      expect((await startedAt(runId, 2)) - firstEnded).toBeGreaterThanOrEqual(15_000);
    },
    TIMEOUT
  );
});
