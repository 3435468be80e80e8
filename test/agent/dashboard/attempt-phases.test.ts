import { describe, expect, it } from "vitest";
import { attemptPhases } from "../../../runtime/agent/service/attempt-phases.ts";
import type { AttemptRecord, EventRecord } from "../../../runtime/agent/store/types.ts";

const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
let nextId = 1;
const ev = (type: string, stageId: string | null, at: number, data: Record<string, unknown> = {}): EventRecord => ({ id: nextId++, runId: "r", stageId, type, data, at: t(at) });
function attempt(id: string, stageId: string, number: number, placed: number, started: number | null, finished: number | null, status: AttemptRecord["status"]): AttemptRecord {
  return { id, runId: "r", stageId, number, status, gpus: ["gpu-0"], workspace: null, pid: null, placedAt: t(placed), startedAt: started === null ? null : t(started), finishedAt: finished === null ? null : t(finished), exitCode: null, signal: null, reason: null, peakVramMiB: null, simulated: false };
}

describe("attemptPhases", () => {
  it("derives queue, load, execution and sealing of a stage ready from the start, and of a dependent", () => {
    const events = [
      ev("run.accepted", null, 0),
      ev("stage.placed", "a", 2, { attempt: 1 }),
      ev("stage.running", "a", 5, { attempt: 1 }),
      ev("stage.sealing", "a", 9, { attempt: 1 }),
      ev("stage.succeeded", "a", 10, { attempt: 1 }),
      ev("stage.ready", "b", 10),
      ev("stage.placed", "b", 11, { attempt: 1 }),
      ev("stage.running", "b", 12, { attempt: 1 }),
    ];
    const phases = attemptPhases([attempt("a1", "a", 1, 2, 5, 10, "succeeded"), attempt("b1", "b", 1, 11, 12, null, "running")], events, t(0));
    expect(phases.get("a1")).toEqual({ queuedAt: t(0), placedAt: t(2), loadStartedAt: t(2), runningAt: t(5), sealingAt: t(9), finishedAt: t(10) });
    expect(phases.get("b1")).toEqual({ queuedAt: t(10), placedAt: t(11), loadStartedAt: t(11), runningAt: t(12), sealingAt: null, finishedAt: null });
  });

  it("queues a retry from the failed attempt's retrying event, and an interrupted one from its interruption", () => {
    const events = [
      ev("run.accepted", null, 0),
      ev("stage.placed", "a", 1, { attempt: 1 }),
      ev("stage.running", "a", 2, { attempt: 1 }),
      ev("stage.retrying", "a", 4, { attempt: 1, reason: "exit 1" }),
      ev("stage.placed", "a", 7, { attempt: 2 }),
      ev("stage.running", "a", 8, { attempt: 2 }),
      ev("stage.interrupted", "a", 9, { attempt: 2 }),
      ev("stage.placed", "a", 12, { attempt: 3 }),
    ];
    const phases = attemptPhases(
      [attempt("a1", "a", 1, 1, 2, 4, "failed"), attempt("a2", "a", 2, 7, 8, 9, "interrupted"), attempt("a3", "a", 3, 12, null, null, "placed")],
      events,
      t(0)
    );
    expect(phases.get("a1")!.queuedAt).toBe(t(0));
    expect(phases.get("a1")!.sealingAt).toBeNull();
    expect(phases.get("a1")!.finishedAt).toBe(t(4));
    expect(phases.get("a2")).toMatchObject({ queuedAt: t(4), placedAt: t(7), runningAt: t(8), finishedAt: t(9) });
    expect(phases.get("a3")).toEqual({ queuedAt: t(9), placedAt: t(12), loadStartedAt: t(12), runningAt: null, sealingAt: null, finishedAt: null });
  });

  it("falls back to the attempt's own times when the events are missing", () => {
    const phases = attemptPhases([attempt("x", "a", 1, 3, 4, 6, "succeeded")], [], t(1));
    expect(phases.get("x")).toEqual({ queuedAt: t(1), placedAt: t(3), loadStartedAt: t(3), runningAt: t(4), sealingAt: null, finishedAt: t(6) });
  });
});
