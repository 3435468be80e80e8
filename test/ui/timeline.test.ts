/** The run page's timeline geometry: phases → segments, attempts → bars on their GPUs' lanes, the axis. */
import { describe, expect, it } from "vitest";
import { axisTicks, NO_GPU_LANE, phaseSpans, timelineModel, type AttemptInput, type Phases } from "../../ui/src/lib/timeline.ts";

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const NONE: Phases = { queuedAt: null, placedAt: null, loadStartedAt: null, runningAt: null, sealingAt: null, finishedAt: null };

function attempt(stageId: string, number: number, gpus: string[], phases: Partial<Phases>, status = "succeeded"): AttemptInput {
  return { stageId, number, status, gpus, phases: { ...NONE, ...phases } };
}

describe("phaseSpans", () => {
  it("cuts a finished attempt into queue, load, execute and seal", () => {
    const spans = phaseSpans({ queuedAt: at(0), placedAt: at(2), loadStartedAt: at(2), runningAt: at(5), sealingAt: at(15), finishedAt: at(16) }, T0 + 99_000);
    expect(spans.map((s) => [s.phase, (s.start - T0) / 1000, (s.end - T0) / 1000])).toEqual([
      ["queue", 0, 2],
      ["load", 2, 5],
      ["execute", 5, 15],
      ["seal", 15, 16],
    ]);
  });

  it("leaves out a phase that did not happen (no model to load)", () => {
    const spans = phaseSpans({ ...NONE, queuedAt: at(0), placedAt: at(1), runningAt: at(1), sealingAt: at(4), finishedAt: at(4.5) }, T0);
    expect(spans.map((s) => s.phase)).toEqual(["queue", "execute", "seal"]);
  });

  it("runs the open phase of a running attempt up to now", () => {
    const spans = phaseSpans({ ...NONE, queuedAt: at(0), placedAt: at(1), runningAt: at(3) }, T0 + 10_000);
    expect(spans.at(-1)).toEqual({ phase: "execute", start: T0 + 3000, end: T0 + 10_000 });
  });

  it("ends an attempt that failed during execution at finishedAt", () => {
    const spans = phaseSpans({ ...NONE, queuedAt: at(0), placedAt: at(1), runningAt: at(2), finishedAt: at(6) }, T0 + 60_000);
    expect(spans.at(-1)).toEqual({ phase: "execute", start: T0 + 2000, end: T0 + 6000 });
  });

  it("never draws a negative span when clocks disagree", () => {
    const spans = phaseSpans({ ...NONE, queuedAt: at(5), placedAt: at(4), runningAt: at(4), finishedAt: at(8) }, T0);
    expect(spans.every((s) => s.end >= s.start)).toBe(true);
  });
});

describe("timelineModel", () => {
  const attempts = [
    attempt("prep", 1, ["gpu-0"], { queuedAt: at(0), placedAt: at(0), runningAt: at(0), sealingAt: at(10), finishedAt: at(10) }),
    attempt("render", 1, ["gpu-0", "gpu-1"], { queuedAt: at(10), placedAt: at(12), loadStartedAt: at(12), runningAt: at(15), sealingAt: at(19), finishedAt: at(20) }, "failed"),
    attempt("render", 2, ["gpu-10"], { queuedAt: at(20), placedAt: at(20), runningAt: at(25), sealingAt: at(35), finishedAt: at(40) }),
    // Never placed: no GPU, no lane.
    attempt("later", 1, [], { queuedAt: at(20) }, "waiting"),
  ];
  const model = timelineModel(attempts, T0 + 100_000);

  it("has one lane per GPU in natural order and one bar per attempt per GPU it used", () => {
    expect(model.lanes.map((l) => l.gpu)).toEqual(["gpu-0", "gpu-1", "gpu-10"]);
    expect(model.lanes.map((l) => l.bars.map((b) => `${b.stageId}#${b.attempt}`))).toEqual([["prep#1", "render#1"], ["render#1"], ["render#2"]]);
  });

  it("places bars as percentages of the run's span", () => {
    expect(model.start).toBe(T0);
    expect(model.end).toBe(T0 + 40_000);
    const render1 = model.lanes[1]!.bars[0]!;
    expect(render1.left).toBeCloseTo(25);
    expect(render1.width).toBeCloseTo(25);
    // Segments are percentages of their bar: queue 2 s, load 3 s, execute 4 s, seal 1 s of 10 s.
    expect(render1.segments.map((s) => [s.phase, Math.round(s.left), Math.round(s.width)])).toEqual([
      ["queue", 0, 20],
      ["load", 20, 30],
      ["execute", 50, 40],
      ["seal", 90, 10],
    ]);
  });

  it("titles a bar with its stage, attempt, status and phase durations", () => {
    expect(model.lanes[1]!.bars[0]!.title).toBe("render attempt 1 (failed)\nqueue wait: 2.0 s\nmodel load: 3.0 s\nexecution: 4.0 s\nsealing: 1.0 s");
  });

  it("puts attempts that held no GPU on a lane of their own, after the GPUs", () => {
    const cpu = attempt("sheet", 1, [], { queuedAt: at(40), placedAt: at(40), runningAt: at(41), sealingAt: at(44), finishedAt: at(45) });
    const withCpu = timelineModel([...attempts, cpu], T0 + 100_000);
    expect(withCpu.lanes.map((l) => l.gpu)).toEqual(["gpu-0", "gpu-1", "gpu-10", NO_GPU_LANE]);
    expect(withCpu.lanes[3]!.bars.map((b) => `${b.stageId}#${b.attempt}`)).toEqual(["sheet#1"]);
  });

  it("is empty before any attempt was placed", () => {
    expect(timelineModel([attempts[3]!], T0).lanes).toEqual([]);
  });
});

describe("axisTicks", () => {
  it("picks a round step giving at most about six ticks, labelled from the start", () => {
    const ticks = axisTicks(T0, T0 + 40_000);
    expect(ticks.map((t) => t.label)).toEqual(["0", "10 s", "20 s", "30 s", "40 s"]);
    expect(ticks.map((t) => t.left)).toEqual([0, 25, 50, 75, 100]);
  });

  it("labels minutes and hours", () => {
    expect(axisTicks(T0, T0 + 30 * 60_000).map((t) => t.label)).toEqual(["0", "5 m", "10 m", "15 m", "20 m", "25 m", "30 m"]);
    expect(axisTicks(T0, T0 + 5 * 3600_000).map((t) => t.label)).toEqual(["0", "1 h", "2 h", "3 h", "4 h", "5 h"]);
  });
});
