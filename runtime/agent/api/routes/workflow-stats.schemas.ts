/** What GET /v1/workflows/:name/stats accepts and answers. */
import { z } from "zod";

export const WorkflowStatsParams = z
  .object({
    name: z
      .string()
      .min(1, "must name a workflow")
      .max(253, "must be at most 253 characters")
      .regex(/^[^\u0000-\u001f\u007f/]+$/, "must be a workflow name (no control characters or '/')")
      .describe("the workflow's name, as runs record it"),
  })
  .strict();

export const WorkflowStatsQuery = z
  .object({
    runs: z.coerce
      .number({ error: "must be a number of runs, e.g. ?runs=50" })
      .int("must be a whole number of runs")
      .min(1, "must be at least 1")
      .max(1000, "must be at most 1000")
      .default(50)
      .describe("how many of the workflow's last finished runs to look at (1 to 1000, default 50)"),
  })
  .strict();

const Seconds = z.number().nullable();

export const WorkflowStatsResponse = z.object({
  workflow: z.string(),
  /** Finished runs looked at. */
  runs: z.number(),
  stages: z.array(
    z.object({
      stageId: z.string(),
      count: z.number(),
      p50: Seconds,
      p90: Seconds,
      p99: Seconds,
      recentP50: Seconds.describe("median over the last 10 runs"),
      baselineP50: Seconds.describe("median over the runs before those"),
      regression: z.boolean().describe("recentP50 ≥ 1.25 × baselineP50, with at least 5 values on each side"),
    })
  ),
});
