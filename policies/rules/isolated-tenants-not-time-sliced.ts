import type { PlatformConfig, TenantConfig } from "../../runtime/config/schema.ts";
import { configPath } from "../context.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { checkConfigs, controls } from "./support.ts";

/** A tenant that must never share a GPU with another tenant. */
export function needsDedicatedGpus(tenant: TenantConfig): boolean {
  return tenant.isolation === "dedicated" || tenant.dataClassification === "pii" || tenant.dataClassification === "phi";
}

function check(config: PlatformConfig, at: (inner: string) => string): Outcome[] {
  const outcomes: Outcome[] = [];
  const isolated = config.tenants.filter(needsDedicatedGpus);
  config.pools.forEach((pool, i) => {
    if (pool.sharing.mode !== "time-slicing") return;
    const served = new Set(Object.keys(pool.tenantQuotas));
    if (pool.name === config.deployment.pool) for (const t of config.tenants) served.add(t.name);
    for (const tenant of isolated) {
      if (!served.has(tenant.name)) continue;
      const inner = tenant.name in pool.tenantQuotas ? `pools[${i}].tenantQuotas.${tenant.name}` : `pools[${i}].sharing.mode`;
      outcomes.push(violation(at(inner), `tenant '${tenant.name}' (${tenant.dataClassification}, ${tenant.isolation}) runs on time-sliced pool '${pool.name}', which gives no memory isolation`));
    }
  });
  return outcomes;
}

export const isolatedTenantsNotTimeSliced: Rule = {
  id: "GF-GPU-004",
  name: "isolated-tenants-not-time-sliced",
  level: "error",
  title: "Tenants that need isolation never share a time-sliced GPU",
  rationale:
    "Time-slicing shares one GPU's memory between all its replicas with no isolation and no fault containment: a tenant's stage can read another's leftover tensors. pii/phi or `dedicated` tenants must get exclusive GPUs or MIG instances.",
  remediation:
    "Give the tenant its own pool with `GpuSharing.exclusive()` or `GpuSharing.mig({...})`, or bind its workflows to a WorkflowDeployment whose pool is not time-sliced.",
  controls: [controls.baseline("isolation"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: ["config_map"],
  check(resource, context) {
    return checkConfigs(resource, context, (config, source) => {
      const outcomes = check(config, (inner) => configPath(source, inner));
      return outcomes.length ? outcomes : compliant;
    });
  },
};
