/** The interface every simulated policy implements: gpufabric's scheduler and the baselines alike. */
import type { Decision, RunSpec, SubmitResult } from "../scheduler/types.ts";
import type { GpuSpec } from "../scheduler/inventory.ts";
import type { SchedulerSettings } from "../config/schema.ts";
import type { TenantShare } from "../scheduler/scheduler.ts";

export interface Dispatch {
  readonly runId: string;
  readonly stageId: string;
  readonly gpus: readonly number[];
  /** Models to unload first (only policies that track residency say so). */
  readonly evict: readonly { readonly gpu: number; readonly model: string }[];
}

export interface PolicyStep {
  readonly starts: readonly Dispatch[];
  readonly kills: readonly { readonly runId: string; readonly stageId: string }[];
  /** The full decisions, for policies that explain themselves. */
  readonly decisions?: readonly Decision[];
}

export interface SimPolicy {
  readonly name: string;
  submit(run: RunSpec, now: number): SubmitResult;
  step(now: number): PolicyStep;
  finished(runId: string, stageId: string, now: number, outcome: "succeeded" | "failed"): void;
  /** Placements made so far (decisions counted for decisions_per_s). */
  readonly decisionCount: number;
}

export interface PolicyContext {
  readonly gpus: readonly GpuSpec[];
  readonly tenants: readonly TenantShare[];
  readonly settings: Partial<SchedulerSettings>;
  readonly seed: number;
  /** List schedules tried when planning a run ahead. */
  readonly planBudget?: number;
}

export type PolicyFactory = (ctx: PolicyContext) => SimPolicy;
