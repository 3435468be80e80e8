/**
 * The usage query of the Store contract (run by describeStoreContract for every store): GPU-seconds and
 * VRAM-GiB-seconds per workflow and stage, from the attempts' process times clipped to the range.
 */
import { expect, it } from "vitest";
import type { AttemptRecord, NewRun, Store } from "../../runtime/agent/store/index.ts";
import { stage } from "./fixtures/runs.ts";
import { runAttempt, sleep, workflowRun } from "./fixtures/store-attempts.ts";

const ms = (iso: string | null) => new Date(iso!).getTime();
const HOUR = 3_600_000;

const twoStageRun = (tenant: string, workflow: string): NewRun =>
  workflowRun(tenant, workflow, [stage("render", [], { resources: { gpus: 2, vramMiB: 2048 } }), stage("encode", ["render"], { resources: { gpus: 1, vramMiB: 512 } })]);

const seconds = (a: AttemptRecord, from = -Infinity, to = Infinity) => Math.max(0, (Math.min(ms(a.finishedAt), to) - Math.max(ms(a.startedAt), from)) / 1000);

export function usageContractCases(store: () => Store): void {
  it("sums GPU-seconds and reserved VRAM-GiB-seconds per workflow and stage, for the tenant asked only", async () => {
    const s = store();
    const { run } = await s.createRun(twoStageRun("studio", "poster"));
    const { run: other } = await s.createRun(twoStageRun("research", "poster"));
    const failed = await runAttempt(s, run.id, "render", ["g0", "g1"], 20, "failed, retry");
    const render = await runAttempt(s, run.id, "render", ["g0", "g1"], 30);
    const encode = await runAttempt(s, run.id, "encode", ["g0"], 20);
    await runAttempt(s, other.id, "render", ["g2", "g3"], 10);
    // Placed, never started: the tenant's work never ran, so nothing is counted.
    await s.markPlaced({ runId: other.id, stageId: "encode", gpus: ["g2"], explanation: null });

    const from = new Date(Date.now() - HOUR).toISOString();
    const to = new Date(Date.now() + HOUR).toISOString();
    const rows = await s.usage("studio", from, to);
    expect(rows.map((r) => [r.tenant, r.workflow, r.stage, r.attempts])).toEqual([
      ["studio", "poster", "encode", 1],
      ["studio", "poster", "render", 2],
    ]);
    const renderSeconds = 2 * (seconds(failed) + seconds(render));
    expect(rows[1]!.gpuSeconds).toBeCloseTo(renderSeconds, 3);
    expect(rows[1]!.vramGiBSeconds).toBeCloseTo(renderSeconds * 2, 3);
    expect(rows[0]!.gpuSeconds).toBeCloseTo(seconds(encode), 3);
    expect(rows[0]!.vramGiBSeconds).toBeCloseTo(seconds(encode) * 0.5, 3);
    expect(rows[1]!.gpuSeconds).toBeGreaterThan(0.09);

    const theirs = await s.usage("research", from, to);
    expect(theirs.map((r) => [r.tenant, r.stage, r.attempts])).toEqual([["research", "render", 1]]);
    expect(await s.usage("nobody", from, to)).toEqual([]);
  });

  it("clips attempts to the range, and counts a running attempt up to now", async () => {
    const s = store();
    const { run } = await s.createRun(twoStageRun("studio", "poster"));
    const render = await runAttempt(s, run.id, "render", ["g0", "g1"], 60);
    const mid = Math.floor((ms(render.startedAt) + ms(render.finishedAt)) / 2);
    const clipped = await s.usage("studio", new Date(mid).toISOString(), new Date(Date.now() + HOUR).toISOString());
    expect(clipped).toHaveLength(1);
    expect(clipped[0]!.gpuSeconds).toBeCloseTo(2 * seconds(render, mid), 3);
    const before = await s.usage("studio", new Date(ms(render.startedAt) - HOUR).toISOString(), render.startedAt!);
    expect(before).toEqual([]);

    const open = await s.markPlaced({ runId: run.id, stageId: "encode", gpus: ["g0"], explanation: null });
    const started = await s.markRunning(open.id, { pid: 2, workspace: "/ws" });
    await sleep(30);
    const rows = await s.usage("studio", render.finishedAt!, new Date(Date.now() + HOUR).toISOString());
    expect(rows.map((r) => [r.stage, r.attempts])).toEqual([["encode", 1]]);
    expect(rows[0]!.gpuSeconds).toBeGreaterThanOrEqual(0.02);
    expect(rows[0]!.gpuSeconds).toBeLessThan((Date.now() - ms(started.startedAt)) / 1000 + 0.01);
  });

  it("refuses a range that is not one, naming the bound at fault", async () => {
    const s = store();
    await expect(s.usage("studio", "yesterday", new Date().toISOString())).rejects.toThrow(/'from' is not an ISO time/);
    await expect(s.usage("studio", new Date().toISOString(), "soon")).rejects.toThrow(/'to' is not an ISO time/);
    const now = new Date().toISOString();
    await expect(s.usage("studio", now, now)).rejects.toThrow(RangeError);
  });
}
