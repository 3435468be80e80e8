/** The policies the simulator can run, by name. */
import { ValidationError } from "../config/errors.ts";
import { BASELINES } from "./baselines.ts";
import { GpufabricPolicy } from "./gpufabric-policy.ts";
import type { PolicyContext, SimPolicy } from "./policy.ts";
import type { Workload } from "./workload.ts";

export const POLICY_NAMES = ["gpufabric", "fifo-job", "fifo-stage", "naive-stage"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

export function createPolicy(name: string, workload: Workload, seed: number, planBudget?: number): SimPolicy {
  if (!isPolicyName(name)) throw new ValidationError("policy", [{ field: "policy", message: `unknown policy '${name}': use one of ${POLICY_NAMES.join(", ")}` }]);
  const ctx: PolicyContext = { gpus: workload.gpus, tenants: workload.tenants, settings: workload.settings ?? {}, seed, ...(planBudget !== undefined ? { planBudget } : {}) };
  return name === "gpufabric" ? new GpufabricPolicy(ctx) : BASELINES[name](ctx);
}
