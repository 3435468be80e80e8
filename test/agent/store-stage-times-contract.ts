/**
 * The stage-times read of the Store contract (run by describeStoreContract for every store): the last N
 * finished runs of a workflow, newest first, each with its succeeded attempts' seconds; the tenant's only.
 */
import { expect, it } from "vitest";
import type { AttemptRecord, NewRun, Store } from "../../runtime/agent/store/index.ts";
import { stage } from "./fixtures/runs.ts";
import { runAttempt, sleep, workflowRun } from "./fixtures/store-attempts.ts";

const pairRun = (tenant: string, workflow: string): NewRun => workflowRun(tenant, workflow, [stage("render"), stage("encode", ["render"])]);
const attempt = (s: Store, runId: string, stageId: string, holdMs: number, fail = false): Promise<AttemptRecord> =>
  runAttempt(s, runId, stageId, ["g0"], holdMs, fail ? "failed, final" : "succeeded");

const took = (a: AttemptRecord) => (new Date(a.finishedAt!).getTime() - new Date(a.startedAt!).getTime()) / 1000;

export function stageTimesContractCases(store: () => Store): void {
  it("stageTimes: a workflow's last finished runs newest first, with each succeeded stage's seconds; the tenant's own only", async () => {
    const s = store();
    const first = (await s.createRun(pairRun("studio", "poster"))).run;
    const r1 = await attempt(s, first.id, "render", 30);
    const e1 = await attempt(s, first.id, "encode", 5);
    await sleep(5);
    // A failed run is finished too: its succeeded stage counts, its failed one does not.
    const second = (await s.createRun(pairRun("studio", "poster"))).run;
    const r2 = await attempt(s, second.id, "render", 10);
    await attempt(s, second.id, "encode", 1, true);
    await sleep(5);
    const unfinished = (await s.createRun(pairRun("studio", "poster"))).run;
    await attempt(s, unfinished.id, "render", 1);
    const otherWorkflow = (await s.createRun(pairRun("studio", "banner"))).run;
    await attempt(s, otherWorkflow.id, "render", 1);
    await attempt(s, otherWorkflow.id, "encode", 1);
    const otherTenant = (await s.createRun(pairRun("rival", "poster"))).run;
    await attempt(s, otherTenant.id, "render", 1);
    await attempt(s, otherTenant.id, "encode", 1);

    const times = await s.stageTimes("studio", "poster", 50);
    expect(times.map((t) => [t.runId, t.status])).toEqual([
      [second.id, "failed"],
      [first.id, "succeeded"],
    ]);
    expect(times[0]!.stages.map((x) => x.stageId)).toEqual(["render"]);
    expect(times[0]!.stages[0]!.seconds).toBeCloseTo(took(r2), 3);
    expect(times[1]!.stages.map((x) => [x.stageId, x.seconds])).toEqual([
      ["encode", expect.closeTo(took(e1), 3)],
      ["render", expect.closeTo(took(r1), 3)],
    ]);
    expect(times[1]!.stages.find((x) => x.stageId === "render")!.seconds).toBeGreaterThanOrEqual(0.03);
    expect((await s.stageTimes("studio", "poster", 1)).map((t) => t.runId)).toEqual([second.id]);
    expect(await s.stageTimes("studio", "nothing", 10)).toEqual([]);
    expect((await s.stageTimes("rival", "poster", 10)).map((t) => t.runId)).toEqual([otherTenant.id]);
    await expect(s.stageTimes("studio", "poster", 0)).rejects.toThrow(/runs must be a whole number/);
  });
}
