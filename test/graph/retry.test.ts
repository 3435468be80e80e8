import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY, RETRY_LIMITS, parseWorkflow, retryDelaySeconds, retryPolicyOf } from "../../runtime/graph/index.ts";
import { issuesOf, nativeDoc } from "./helpers.ts";

describe("retry policy in native workflows", () => {
  it("leaves retry out of stages when neither the stage nor the workflow declares one (the defaults apply)", () => {
    const stage = parseWorkflow(nativeDoc([{ id: "a" }])).stages[0]!;
    expect(stage.retry).toBeUndefined();
    expect(retryPolicyOf(stage)).toEqual({ attempts: 3, backoffSeconds: 10, nonRetryableExitCodes: [] });
  });

  it("merges a stage's retry over the workflow's, field by field, over the defaults", () => {
    const graph = parseWorkflow(
      nativeDoc(
        [
          { id: "a" },
          { id: "b", retry: { attempts: 5 } },
          { id: "c", retry: { backoffSeconds: 0, nonRetryableExitCodes: [2, 64, 2] } },
        ],
        { retry: { backoffSeconds: 30, nonRetryableExitCodes: [78] } }
      )
    );
    expect(graph.stages.map((s) => s.retry)).toEqual([
      { attempts: 3, backoffSeconds: 30, nonRetryableExitCodes: [78] },
      { attempts: 5, backoffSeconds: 30, nonRetryableExitCodes: [78] },
      { attempts: 3, backoffSeconds: 0, nonRetryableExitCodes: [2, 64] },
    ]);
  });

  it.each([
    [{ attempts: 0 }, "spec.stages[0].retry.attempts", "at least 1 (1 means no retry)"],
    [{ attempts: 11 }, "spec.stages[0].retry.attempts", "at most 10"],
    [{ attempts: 2.5 }, "spec.stages[0].retry.attempts", "whole number of attempts from 1 (no retry) to 10"],
    [{ attempts: "3" }, "spec.stages[0].retry.attempts", "whole number of attempts"],
    [{ backoffSeconds: -1 }, "spec.stages[0].retry.backoffSeconds", "zero or more seconds"],
    [{ backoffSeconds: 7200 }, "spec.stages[0].retry.backoffSeconds", "at most 3600 seconds"],
    [{ nonRetryableExitCodes: [0] }, "spec.stages[0].retry.nonRetryableExitCodes[0]", "exit code from 1 to 255 (0 means success"],
    [{ nonRetryableExitCodes: [1, 256] }, "spec.stages[0].retry.nonRetryableExitCodes[1]", "exit code from 1 to 255"],
    [{ nonRetryableExitCodes: 2 }, "spec.stages[0].retry.nonRetryableExitCodes", "list of exit codes, e.g. [2, 64]"],
  ])("refuses retry %j, naming %s and the fix", (retry, field, hint) => {
    const issues = issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", retry }])));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.field).toBe(field);
    expect(issues[0]!.message).toContain(hint);
  });

  it("names an unknown retry field and suggests the right one, at the workflow level too", () => {
    expect(issuesOf(() => parseWorkflow(nativeDoc([{ id: "a", retry: { backoffSecond: 5 } }])))).toEqual([
      { field: "spec.stages[0].retry.backoffSecond", message: "unknown field; did you mean 'backoffSeconds'?" },
    ]);
    expect(issuesOf(() => parseWorkflow(nativeDoc([{ id: "a" }], { retry: { attempt: 2 } })))).toEqual([
      { field: "spec.retry.attempt", message: "unknown field; did you mean 'attempts'?" },
    ]);
  });
});

describe("retryDelaySeconds", () => {
  const policy = { ...DEFAULT_RETRY, backoffSeconds: 10 };

  it("doubles the wait after each failure, with up to +50% jitter on top of the floor", () => {
    expect([1, 2, 3].map((n) => retryDelaySeconds(policy, n, () => 0))).toEqual([10, 20, 40]);
    expect([1, 2, 3].map((n) => retryDelaySeconds(policy, n, () => 0.999))).toEqual([1, 2, 3].map((n) => 10 * 2 ** (n - 1) * 1.4995));
    for (let i = 0; i < 1000; i++) {
      const d = retryDelaySeconds(policy, 2);
      expect(d).toBeGreaterThanOrEqual(20);
      expect(d).toBeLessThan(30);
    }
  });

  it("caps the doubling at maxWaitSeconds, and waits nothing with backoffSeconds 0", () => {
    expect(retryDelaySeconds({ ...policy, backoffSeconds: 600 }, 9, () => 0)).toBe(RETRY_LIMITS.maxWaitSeconds);
    expect(retryDelaySeconds({ ...policy, backoffSeconds: 0 }, 5, () => 0.7)).toBe(0);
  });
});
