/** What GET /v1/usage and GET /v1/usage.csv accept and answer (validation and the OpenAPI document). */
import { z } from "zod";

export const USAGE_GROUPS = ["tenant", "workflow", "stage"] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];
/** The default range, and the longest one asked at once (a year of attempts is summed in the store). */
export const DEFAULT_USAGE_DAYS = 30;
export const MAX_USAGE_DAYS = 366;

/** `now`, `-<n><unit>` (s, m, h, d, w before now) or an ISO 8601 time with a zone (`Z` or `±hh:mm`). */
const RELATIVE = /^-(\d{1,6})([smhdw])$/;
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The time a bound names, or undefined when it names none; `now` is the request's time. */
export function resolveTime(spec: string, now: number): number | undefined {
  if (spec === "now") return now;
  const rel = RELATIVE.exec(spec);
  if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2]!]!;
  if (!ISO.test(spec)) return undefined;
  const t = Date.parse(spec);
  return Number.isNaN(t) ? undefined : t;
}

const timeSpec = (which: string, fallback: string) =>
  z
    .string()
    .max(40, "must be at most 40 characters")
    .refine((v) => resolveTime(v, Date.now()) !== undefined, {
      message: `must be an ISO 8601 date, or time with its zone (e.g. 2026-01-31, 2026-01-31T08:00:00Z, 2026-01-31T09:00:00+01:00), 'now', or a time before now such as -24h, -7d, -90m (units s, m, h, d, w)`,
    })
    .optional()
    .describe(`${which} of the range: ISO 8601, 'now' or -<n><s|m|h|d|w> (default ${fallback})`);

export const UsageQuery = z
  .object({
    from: timeSpec("start (inclusive)", `-${DEFAULT_USAGE_DAYS}d`),
    to: timeSpec("end (exclusive)", "now"),
    groupBy: z
      .string()
      .max(100, "must be at most 100 characters")
      .refine((v) => v.split(",").every((g) => (USAGE_GROUPS as readonly string[]).includes(g.trim())), {
        message: `must be a comma-separated list of ${USAGE_GROUPS.join(", ")} (e.g. groupBy=tenant,workflow)`,
      })
      .optional()
      .describe("fields each row is summed by, comma-separated: tenant, workflow, stage (default all three)"),
  })
  .strict();

export const UsageRowSchema = z.object({
  tenant: z.string().nullable().describe("null when not grouped by tenant"),
  workflow: z.string().nullable().describe("null when not grouped by workflow"),
  stage: z.string().nullable().describe("null when not grouped by stage"),
  gpuSeconds: z.number().describe("GPUs held x seconds from process start to end, clipped to the range"),
  vramGiBSeconds: z.number().describe("GPUs x VRAM reserved per GPU (GiB) x seconds, clipped to the range"),
  attempts: z.number().int().describe("attempts that ran for some time inside the range"),
});

export const UsageResponse = z.object({
  from: z.string().describe("ISO time, inclusive"),
  to: z.string().describe("ISO time, exclusive"),
  groupBy: z.array(z.enum(USAGE_GROUPS)),
  rows: z.array(UsageRowSchema),
});

/** The CSV's columns, in order (the header row names them). */
export const USAGE_CSV_COLUMNS = ["tenant", "workflow", "stage", "from", "to", "gpu_seconds", "gpu_hours", "vram_gib_seconds", "attempts"] as const;
