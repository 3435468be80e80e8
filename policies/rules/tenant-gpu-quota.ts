import { configPath } from "../context.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { checkConfigs, controls } from "./support.ts";

export const tenantGpuQuota: Rule = {
  id: "GF-GPU-005",
  name: "tenant-gpu-quota",
  level: "error",
  title: "Every tenant has a GPU quota",
  rationale:
    "Fair-share weights only divide GPUs under contention; without a quota one tenant's burst takes the whole pool and holds it until its stages finish.",
  remediation:
    "Pass the tenant in the GpuPool's `tenantQuotas` (it creates a ResourceQuota on requests.nvidia.com/gpu in the tenant's segment) or set the Tenant's `gpuQuota`.",
  controls: [controls.baseline("capacity"), controls.soc2("CC6.3")],
  kinds: ["config_map"],
  check(resource, context) {
    return checkConfigs(resource, context, (config, source) => {
      const pool = config.pools.find((p) => p.name === config.deployment.pool);
      const outcomes: Outcome[] = [];
      config.tenants.forEach((tenant, i) => {
        if (tenant.gpuQuota !== null || (pool && tenant.name in pool.tenantQuotas)) return;
        outcomes.push(violation(configPath(source, `tenants[${i}].gpuQuota`), `tenant '${tenant.name}' has no GPU quota in pool '${config.deployment.pool}'`));
      });
      return outcomes.length ? outcomes : compliant;
    });
  },
};
