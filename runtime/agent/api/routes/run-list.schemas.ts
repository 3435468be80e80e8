/**
 * The zod schemas of the runs list (`GET /v1/runs`), its live stream (`GET /v1/runs/stream`) and resubmit
 * (`POST /v1/runs/:runId/resubmit`): registered in ../openapi/registry.ts, so /openapi.json shows what the
 * routes check.
 */
import { z } from "zod";
import { PriorityClassSchema } from "../../../config/schema.ts";
import { RUN_STATUSES, type RunStatus } from "../../store/types.ts";

const RunStatusSchema = z.enum(RUN_STATUSES as [RunStatus, ...RunStatus[]]);

/** Where a page ends: the last run's (createdAt, id), opaque to clients (base64url JSON). */
export interface ListCursor {
  readonly createdAt: string;
  readonly id: string;
}

export function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString("base64url");
}

export function decodeCursor(text: string): ListCursor | undefined {
  if (text.length > 512 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const value = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as unknown;
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [createdAt, id] = value as unknown[];
    if (typeof createdAt !== "string" || typeof id !== "string" || Number.isNaN(Date.parse(createdAt)) || id.length > 200) return undefined;
    return { createdAt, id };
  } catch {
    return undefined;
  }
}

const filters = {
  status: RunStatusSchema.optional().meta({ description: "only runs in this status" }),
  workflow: z
    .string()
    .min(1, "must not be empty: leave it out to list every workflow")
    .max(253, "is longer than any workflow name (253 characters)")
    .optional()
    .meta({ description: "only runs of this workflow (exact name)" }),
  priority: PriorityClassSchema.optional().meta({ description: "only runs of this priority class" }),
};

export const RunListQuery = z.object({
  ...filters,
  limit: z
    .string()
    .regex(/^\d{1,4}$/, "must be a whole number from 1 to 1000")
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, "must be a whole number from 1 to 1000")
    .optional()
    .meta({ description: "runs per page (default 50, at most 1000)" }),
  cursor: z
    .string()
    .transform((text, ctx) => {
      const cursor = decodeCursor(text);
      if (cursor === undefined) {
        ctx.addIssue({ code: "custom", message: "is not a cursor this API gave: pass the nextCursor of the previous page unchanged, or leave it out for the first page" });
        return z.NEVER;
      }
      return cursor;
    })
    .optional()
    .meta({ description: "the nextCursor of the previous page (opaque)" }),
});

export const RunStreamQuery = z.object(filters);

export const StageCountsSchema = z.object({ total: z.number().int(), succeeded: z.number().int(), running: z.number().int(), failed: z.number().int() });

export const RunSummarySchema = z.object({
  id: z.string(),
  status: RunStatusSchema,
  workflow: z.string(),
  priority: PriorityClassSchema,
  submittedBy: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  stages: StageCountsSchema,
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

export const RunListResponse = z.object({
  runs: z.array(RunSummarySchema),
  nextCursor: z.string().nullable().meta({ description: "pass as `cursor` for the next (older) page; null on the last page" }),
});

export const ResubmitAccepted = z.object({ id: z.string(), status: RunStatusSchema });
