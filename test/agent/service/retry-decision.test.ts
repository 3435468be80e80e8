import { describe, expect, it } from "vitest";
import type { Stage } from "../../../runtime/graph/index.ts";
import type { AttemptRecord } from "../../../runtime/agent/store/types.ts";
import { PREEMPTED_REASON, countedFailures, decideRetry, resumedNotBeforeMs } from "../../../runtime/agent/service/retry-decision.ts";

const stage = (retry?: Stage["retry"]): Stage => ({ id: "s", needs: [], resources: { gpus: 1, vramMiB: 1024 }, ...(retry && { retry }) });

function attempt(number: number, status: AttemptRecord["status"], reason: string | null = null, finishedAt: string | null = null): AttemptRecord {
  return {
    id: `a${number}`,
    runId: "r",
    stageId: "s",
    number,
    status,
    gpus: [],
    workspace: null,
    pid: null,
    placedAt: "2026-01-01T00:00:00.000Z",
    startedAt: null,
    finishedAt,
    exitCode: null,
    signal: null,
    reason,
    peakVramMiB: null,
    simulated: false,
  };
}

describe("retry decisions", () => {
  it("counts failed attempts, not preempted or interrupted ones, nor the attempt being decided", () => {
    const attempts = [attempt(1, "failed", "exit 1"), attempt(2, "failed", PREEMPTED_REASON), attempt(3, "interrupted"), attempt(4, "running")];
    expect(countedFailures(attempts, "s", "a4")).toBe(1);
    expect(countedFailures(attempts, "other")).toBe(0);
  });

  it("retries until retry.attempts failed, bounded by the agent's maximum", () => {
    const policy = { attempts: 5, backoffSeconds: 2, nonRetryableExitCodes: [] };
    expect(decideRetry(stage(policy), 3, 1, 10, () => 0)).toEqual({ retry: true, delayS: 16, failures: 4, final: null });
    expect(decideRetry(stage(policy), 4, 1, 10).final).toBe("not retried: 5 of 5 attempt(s) failed (retry.attempts)");
    expect(decideRetry(stage(policy), 1, 1, 2).retry).toBe(false);
    // The defaults (3 attempts) for a stage that declares none.
    expect(decideRetry(stage(), 1, 1, 10).retry).toBe(true);
    expect(decideRetry(stage(), 2, 1, 10).retry).toBe(false);
  });

  it("does not retry an exit code listed in nonRetryableExitCodes, on the first failure", () => {
    const d = decideRetry(stage({ attempts: 5, backoffSeconds: 2, nonRetryableExitCodes: [2] }), 0, 2, 10);
    expect(d).toEqual({ retry: false, delayS: 0, failures: 1, final: "not retried: exit code 2 is listed in retry.nonRetryableExitCodes" });
  });

  it("owes a resumed stage the backoff of its last failure, counted from when it ended", () => {
    const s = stage({ attempts: 5, backoffSeconds: 10, nonRetryableExitCodes: [] });
    const ended = "2026-01-01T00:01:00.000Z";
    // Two counted failures: the wait after the second is 20 s (jitter drawn as 0 here).
    const attempts = [attempt(1, "failed", "exit 1", "2026-01-01T00:00:30.000Z"), attempt(2, "failed", "exit 1", ended)];
    expect(resumedNotBeforeMs(s, attempts, () => 0)).toBe(Date.parse(ended) + 20_000);
    // Nothing owed after an interruption or a preemption, nor with backoffSeconds 0.
    expect(resumedNotBeforeMs(s, [...attempts, attempt(3, "interrupted", null, ended)])).toBeNull();
    expect(resumedNotBeforeMs(s, [attempt(1, "failed", PREEMPTED_REASON, ended)])).toBeNull();
    expect(resumedNotBeforeMs(stage({ attempts: 5, backoffSeconds: 0, nonRetryableExitCodes: [] }), attempts)).toBeNull();
  });
});
