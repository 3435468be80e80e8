/**
 * GPU usage of the caller's tenant over a time range (GET /v1/usage), and the same as a chargeback CSV
 * (GET /v1/usage.csv): GPU-seconds and VRAM-GiB-seconds summed from the store's attempts (Store.usage).
 *
 * Action usage:read, least role viewer: the figures are the tenant's own, and everything in them is
 * readable already by a viewer (each attempt's GPUs and times in GET /v1/runs/:id, the GPU-seconds
 * counters on /metrics); prices are not the agent's business, so nothing here needs an admin.
 */
import type { FastifyInstance } from "fastify";
import type { UsageRow } from "../../store/types.ts";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";
import type { z } from "zod";
import { parseRequest } from "../openapi/request.ts";
import { DEFAULT_USAGE_DAYS, MAX_USAGE_DAYS, resolveTime, USAGE_CSV_COLUMNS, USAGE_GROUPS, type UsageGroup, type UsageQuery } from "./usage.schemas.ts";

const DAY_MS = 86_400_000;

export interface UsageAnswer {
  readonly from: string;
  readonly to: string;
  readonly groupBy: UsageGroup[];
  readonly rows: Array<{ tenant: string | null; workflow: string | null; stage: string | null; gpuSeconds: number; vramGiBSeconds: number; attempts: number }>;
}

export function registerUsageRoutes(app: FastifyInstance, parts: HttpParts): void {
  // The query is checked with the schemas /openapi.json documents for the route (../openapi/registry.ts).
  app.get("/v1/usage", async (request) => usageOf(parts, request.identity!.tenant, parseRequest(request, "GET /v1/usage").query));

  app.get("/v1/usage.csv", async (request, reply) => {
    const tenant = request.identity!.tenant;
    const answer = await usageOf(parts, tenant, parseRequest(request, "GET /v1/usage.csv").query);
    const stamp = (iso: string) => iso.replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const file = `gpufabric-usage-${tenant.replace(/[^A-Za-z0-9._-]/g, "_")}-${stamp(answer.from)}-${stamp(answer.to)}.csv`;
    return reply
      .header("content-type", "text/csv; charset=utf-8; header=present")
      .header("content-disposition", `attachment; filename="${file}"`)
      .header("cache-control", "no-store")
      .send(usageCsv(answer));
  });
}

async function usageOf(parts: HttpParts, tenant: string, q: z.output<typeof UsageQuery>): Promise<UsageAnswer> {
  const now = Date.now();
  const to = resolveTime(q.to ?? "now", now)!;
  const from = q.from === undefined ? to - DEFAULT_USAGE_DAYS * DAY_MS : resolveTime(q.from, now)!;
  if (to <= from) {
    throw new ApiError(400, "invalid-request", `to: must be after from (${new Date(from).toISOString()}): swap them or widen the range`, "to");
  }
  if (to - from > MAX_USAGE_DAYS * DAY_MS) {
    throw new ApiError(400, "invalid-request", `from: the range is longer than ${MAX_USAGE_DAYS} days: ask for it a year at a time`, "from");
  }
  const groupBy = q.groupBy === undefined ? [...USAGE_GROUPS] : USAGE_GROUPS.filter((g) => q.groupBy!.split(",").some((x) => x.trim() === g));
  const fromIso = new Date(from).toISOString();
  const toIso = new Date(to).toISOString();
  const rows = await parts.store.usage(tenant, fromIso, toIso);
  return { from: fromIso, to: toIso, groupBy, rows: groupRows(rows, groupBy) };
}

/** Sums the store's per-workflow-and-stage rows by the asked fields; the others are null. */
export function groupRows(rows: readonly UsageRow[], groupBy: readonly UsageGroup[]): UsageAnswer["rows"] {
  const sums = new Map<string, UsageAnswer["rows"][number]>();
  for (const r of rows) {
    const key = { tenant: groupBy.includes("tenant") ? r.tenant : null, workflow: groupBy.includes("workflow") ? r.workflow : null, stage: groupBy.includes("stage") ? r.stage : null };
    const id = JSON.stringify([key.tenant, key.workflow, key.stage]);
    const sum = sums.get(id) ?? { ...key, gpuSeconds: 0, vramGiBSeconds: 0, attempts: 0 };
    sum.gpuSeconds += r.gpuSeconds;
    sum.vramGiBSeconds += r.vramGiBSeconds;
    sum.attempts += r.attempts;
    sums.set(id, sum);
  }
  // Milliseconds are the stores' resolution: more digits would be noise.
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return [...sums.values()]
    .map((s) => ({ ...s, gpuSeconds: round(s.gpuSeconds), vramGiBSeconds: round(s.vramGiBSeconds) }))
    .sort((a, b) => compare(a.tenant, b.tenant) || compare(a.workflow, b.workflow) || compare(a.stage, b.stage));
}

const compare = (a: string | null, b: string | null) => (a ?? "").localeCompare(b ?? "", "en");

/** RFC 4180: CRLF line ends, a header row, fields holding a comma, quote or line break quoted, quotes doubled. */
export function usageCsv(answer: UsageAnswer): string {
  const lines = [USAGE_CSV_COLUMNS.join(",")];
  for (const r of answer.rows) {
    const values = [r.tenant ?? "", r.workflow ?? "", r.stage ?? "", answer.from, answer.to, r.gpuSeconds, Math.round((r.gpuSeconds / 3600) * 1e6) / 1e6, r.vramGiBSeconds, r.attempts];
    lines.push(values.map((v) => csvField(typeof v === "number" ? String(v) : v, typeof v === "string")).join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

/**
 * One field. Text a spreadsheet would read as a formula (starting with = + - @, a tab or a CR) is
 * prefixed with an apostrophe, so an exported name cannot run in the reader's spreadsheet.
 */
export function csvField(value: string, text = true): string {
  const safe = text && /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
