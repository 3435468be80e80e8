/**
 * GET /v1/fairshare: how the GPUs are shared between tenants now. Per tenant: its weight, the fraction
 * of the GPUs its running stages hold, its quota and how much of it is used, and the GPU-seconds its
 * queued (ready and waiting) stages are estimated to need, by priority class (a run is interactive or
 * batch: the config's classes; the scheduler's aged batch level is not a class a run is submitted with).
 */
import type { FastifyInstance } from "fastify";
import type { PriorityClass } from "../../../config/schema.ts";
import { UNKNOWN_DURATION_S } from "../../../scheduler/from-graph.ts";
import type { StageRecord } from "../../store/types.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";

export const OTHER_TENANTS = "(other tenants)";

interface Row {
  weight: number;
  heldGpus: number;
  heldMiB: number;
  quotaGpus: number | null;
  quotaMiB: number | null;
  queued: Record<PriorityClass, number>;
}

export function registerFairshareRoutes(app: FastifyInstance, parts: HttpParts): void {
  app.get("/v1/fairshare", async (request) => {
    parseRequest(request, "GET /v1/fairshare");
    const tenant = request.identity!.tenant;
    const rows = await tenantRows(parts);
    const gpus = parts.scheduler()?.gpuCount ?? parts.devices.length;
    const own = rows.get(tenant) ?? emptyRow(1, null, null);
    // Why one summed row: another tenant's data never appears to a caller, not even its name or how much
    // it runs. The sum of every other tenant still shows what the caller's share is measured against.
    const others = [...rows.entries()].filter(([name]) => name !== tenant).map(([, row]) => row);
    const rowsShown: Array<[string, Row]> = [[tenant, own]];
    if (others.length > 0) rowsShown.push([OTHER_TENANTS, sumRows(others)]);
    return { gpus, tenants: rowsShown.map(([name, row]) => view(name, row, gpus)) };
  });
}

function emptyRow(weight: number, quotaGpus: number | null, quotaMiB: number | null): Row {
  return { weight, heldGpus: 0, heldMiB: 0, quotaGpus, quotaMiB, queued: { interactive: 0, batch: 0 } };
}

/** Every configured tenant with what it holds and what it has queued. */
async function tenantRows(parts: HttpParts): Promise<Map<string, Row>> {
  const { config } = parts;
  const pool = config.pools.find((p) => p.name === config.deployment.pool);
  const rows = new Map<string, Row>();
  for (const t of config.tenants) {
    // As the scheduler caps it (scheduler/from-config.ts): the tighter of the tenant's and the pool's quota.
    const poolQuota = pool?.tenantQuotas[t.name];
    const gpuQuota = poolQuota === undefined ? t.gpuQuota : t.gpuQuota === null ? poolQuota : Math.min(t.gpuQuota, poolQuota);
    rows.set(t.name, emptyRow(t.weight, gpuQuota, t.vramQuotaMiB));
  }
  const usage = parts.scheduler()?.tenantUsage();
  if (usage) {
    for (const u of usage) {
      const row = rows.get(u.name);
      if (row) Object.assign(row, { heldGpus: u.heldGpus, heldMiB: u.heldMiB });
    }
  } else {
    // A control plane that does not lead has no scheduler: what its queue knows of running stages.
    for (const s of parts.loop.runningStages()) {
      const row = rows.get(s.tenant);
      if (!row) continue;
      row.heldGpus += s.gpus.length;
      row.heldMiB += s.gpus.length * (parts.loop.stageSpec(s.runId, s.stageId)?.resources.vramMiB ?? 0);
    }
  }
  // From the store: every replica answers alike, and a run's priority is the one it was submitted with.
  for (const { run, stages } of await parts.store.activeRuns()) {
    const row = rows.get(run.tenant);
    if (!row) continue;
    for (const stage of stages) row.queued[run.priority] += queuedGpuSeconds(stage);
  }
  return rows;
}

/**
 * GPU-seconds a stage not yet placed is expected to take: its GPUs times the duration the scheduler
 * ranks it by (its estimate, or UNKNOWN_DURATION_S without one) plus its model's load time.
 */
export function queuedGpuSeconds(stage: Pick<StageRecord, "status" | "resources" | "spec">): number {
  if ((stage.status !== "ready" && stage.status !== "waiting") || stage.resources.gpus === 0) return 0;
  const duration = stage.spec.estimate?.durationS ?? UNKNOWN_DURATION_S;
  const load = stage.resources.model !== undefined ? (stage.spec.estimate?.modelLoadS ?? 0) : 0;
  return stage.resources.gpus * (duration + load);
}

function sumRows(rows: readonly Row[]): Row {
  const sum = emptyRow(0, 0, 0);
  for (const r of rows) {
    sum.weight += r.weight;
    sum.heldGpus += r.heldGpus;
    sum.heldMiB += r.heldMiB;
    // One tenant without a quota makes the sum unbounded.
    sum.quotaGpus = sum.quotaGpus === null || r.quotaGpus === null ? null : sum.quotaGpus + r.quotaGpus;
    sum.quotaMiB = sum.quotaMiB === null || r.quotaMiB === null ? null : sum.quotaMiB + r.quotaMiB;
    for (const p of ["interactive", "batch"] as const) sum.queued[p] += r.queued[p];
  }
  return sum;
}

function view(tenant: string, row: Row, gpus: number) {
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    tenant,
    weight: row.weight,
    share: gpus === 0 ? 0 : round(row.heldGpus / gpus),
    quota:
      row.quotaGpus === null && row.quotaMiB === null
        ? null
        : { gpus: row.quotaGpus, vramMiB: row.quotaMiB, usedGpus: row.heldGpus, usedVramMiB: row.heldMiB },
    queuedGpuSeconds: { interactive: round(row.queued.interactive), batch: round(row.queued.batch) },
  };
}
