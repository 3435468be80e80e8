/** gpufabric's own scheduler behind the simulator's policy interface, unchanged. */
import { Scheduler } from "../scheduler/scheduler.ts";
import type { Dispatch, PolicyContext, PolicyStep, SimPolicy } from "./policy.ts";
import type { RunSpec } from "../scheduler/types.ts";

export class GpufabricPolicy implements SimPolicy {
  readonly name = "gpufabric";
  readonly scheduler: Scheduler;

  constructor(ctx: PolicyContext) {
    this.scheduler = new Scheduler({
      gpus: ctx.gpus,
      tenants: ctx.tenants,
      settings: ctx.settings,
      plan: { seed: ctx.seed, ...(ctx.planBudget !== undefined ? { budget: ctx.planBudget } : {}) },
    });
  }

  get decisionCount(): number {
    return this.scheduler.placements;
  }

  submit(run: RunSpec, now: number) {
    return this.scheduler.submit(run, now);
  }

  step(now: number): PolicyStep {
    const decisions = this.scheduler.schedule(now);
    const starts: Dispatch[] = [];
    const kills: { runId: string; stageId: string }[] = [];
    for (const d of decisions) {
      // A placement already carries what a dispatch needs.
      if (d.kind === "placed") starts.push(d);
      else if (d.kind === "killed") kills.push({ runId: d.runId, stageId: d.stageId });
    }
    return { starts, kills, decisions };
  }

  finished(runId: string, stageId: string, now: number, outcome: "succeeded" | "failed"): void {
    this.scheduler.finished(runId, stageId, now, outcome);
  }
}
