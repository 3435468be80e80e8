/**
 * Enforcement of run-time rules at submission, as a pure function of the platform config: the agent
 * calls it before accepting a run and answers 403 with the rule id when it refuses.
 */
import type { PlatformConfig, RuntimeRule } from "../../runtime/config/schema.ts";

export interface SubmissionRequest {
  readonly tenant: string;
  readonly workflow?: string;
  /** Pool the run asks for; the deployment's pool when absent. */
  readonly pool?: string;
}

export type SubmissionDecision = { readonly allowed: true } | { readonly allowed: false; readonly ruleId: string; readonly message: string };

/** Ids of refusals that come from the request not matching the config rather than from a rule. */
export const SUBMISSION_REFERENCE_RULES = {
  unknownTenant: "config/unknown-tenant",
  unknownWorkflow: "config/unknown-workflow",
  workflowTenant: "config/workflow-tenant",
  unknownPool: "config/unknown-pool",
} as const;

function refuse(ruleId: string, message: string): SubmissionDecision {
  return { allowed: false, ruleId, message };
}

export function evaluateSubmission(config: PlatformConfig, request: SubmissionRequest): SubmissionDecision {
  const tenant = config.tenants.find((t) => t.name === request.tenant);
  if (!tenant) return refuse(SUBMISSION_REFERENCE_RULES.unknownTenant, `tenant '${request.tenant}' is not declared in the platform config`);
  if (request.workflow !== undefined) {
    const workflow = config.workflows.find((w) => w.name === request.workflow);
    if (!workflow) return refuse(SUBMISSION_REFERENCE_RULES.unknownWorkflow, `workflow '${request.workflow}' is not declared in the platform config`);
    if (!workflow.tenants.includes(tenant.name)) {
      return refuse(SUBMISSION_REFERENCE_RULES.workflowTenant, `workflow '${workflow.name}' is not bound to tenant '${tenant.name}': add the tenant to the workflow's tenants`);
    }
  }
  const poolName = request.pool ?? config.deployment.pool;
  const pool = config.pools.find((p) => p.name === poolName);
  if (!pool) return refuse(SUBMISSION_REFERENCE_RULES.unknownPool, `pool '${poolName}' is not declared in the platform config`);
  const segment = config.segments.find((s) => s.name === config.deployment.segment);
  const tier = config.tiers.find((t) => t.name === config.deployment.tier);

  const applicable = [...config.runtimeRules]
    .sort((a, b) => a.id.localeCompare(b.id))
    .filter((r) => r.tenantClassifications.length === 0 || r.tenantClassifications.includes(tenant.dataClassification));
  for (const rule of applicable) {
    const why = violationOf(rule, { poolSharing: pool.sharing.mode, poolName, segment, tier, region: config.platform.region });
    if (why) return refuse(rule.id, `tenant '${tenant.name}' (${tenant.dataClassification}): ${why}; ${rule.description}`);
  }
  return { allowed: true };
}

interface Placement {
  poolSharing: "exclusive" | "mig" | "time-slicing";
  poolName: string;
  segment: PlatformConfig["segments"][number] | undefined;
  tier: PlatformConfig["tiers"][number] | undefined;
  region: string | null;
}

function violationOf(rule: RuntimeRule, at: Placement): string | undefined {
  const { poolSharing, segmentDefaultDeny, tierEncrypted, allowedRegions } = rule.require;
  if (poolSharing && !poolSharing.includes(at.poolSharing)) return `pool '${at.poolName}' uses ${at.poolSharing} sharing, allowed: ${poolSharing.join(", ")}`;
  if (segmentDefaultDeny && !(at.segment?.defaultDenyIngress && at.segment.defaultDenyEgress)) {
    return `segment '${at.segment?.name ?? "(none)"}' does not deny ingress and egress by default`;
  }
  if (tierEncrypted && !at.tier?.encrypted) return `tier '${at.tier?.name ?? "(none)"}' is not encrypted`;
  if (allowedRegions && (at.region === null || !allowedRegions.includes(at.region))) {
    return `the platform runs in ${at.region ? `region '${at.region}'` : "no declared region"}, allowed: ${allowedRegions.join(", ")}`;
  }
  return undefined;
}
