/** Builds the scheduler the agent runs from a platform config: pools to inventory, tenants to weights and quotas. */
import type { PlatformConfig } from "../config/schema.ts";
import { RETRY_LIMITS } from "../graph/retry.ts";
import { inventoryFromPools } from "./inventory.ts";
import { Scheduler } from "./scheduler.ts";

/** The scheduler for a config's deployment pool (or every pool when `pool` is "*"). */
export function schedulerFromConfig(
  config: Pick<PlatformConfig, "pools" | "tenants" | "scheduler"> & { readonly deployment: Pick<PlatformConfig["deployment"], "pool"> },
  pool: string = config.deployment.pool,
): Scheduler {
  const pools = pool === "*" ? config.pools : config.pools.filter((p) => p.name === pool);
  if (pools.length === 0) throw new Error(`unknown pool '${pool}': declare it under pools`);
  return new Scheduler({
    gpus: inventoryFromPools(pools),
    tenants: config.tenants.map((t) => {
      // A pool's ResourceQuota caps the tenant's GPUs in that pool; the tighter cap wins.
      const poolQuota = pools.length === 1 ? pools[0]!.tenantQuotas[t.name] : undefined;
      const gpuQuota = poolQuota === undefined ? t.gpuQuota : t.gpuQuota === null ? poolQuota : Math.min(t.gpuQuota, poolQuota);
      return { name: t.name, weight: t.weight, gpuQuota, vramQuotaMiB: t.vramQuotaMiB };
    }),
    settings: config.scheduler,
    // The agent's loop decides retries by each stage's retry.attempts (at most this many) and tells the
    // scheduler when a stage is not retried: the scheduler's own count must never stop a stage first.
    maxAttempts: RETRY_LIMITS.maxAttempts,
  });
}
