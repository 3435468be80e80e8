/** What GET /v1/gpus and GET /v1/gpus/history accept and answer (validation and the OpenAPI document). */
import { z } from "zod";

export const GpusResponse = z.object({
  source: z.enum(["nvidia-smi", "simulated", "comfyui"]),
  gpus: z.array(
    z.object({
      id: z.string(),
      node: z.string(),
      name: z.string(),
      uuid: z.string().nullable(),
      simulated: z.boolean(),
      heldBy: z.literal("comfyui").optional(),
      memoryMiB: z.number(),
      usedMiB: z.number(),
      freeMiB: z.number(),
      residentModels: z.array(z.string()),
      running: z.array(z.union([z.object({ runId: z.string(), stageId: z.string(), simulated: z.boolean() }), z.object({ tenant: z.literal("another tenant") })])),
    })
  ),
});

export const GpuHistoryQuery = z
  .object({
    minutes: z.coerce
      .number({ error: "must be a number of minutes, e.g. ?minutes=60" })
      .int("must be a whole number of minutes")
      .min(1, "must be at least 1 minute")
      .max(1440, "must be at most 1440 minutes (24 h: the history keeps no more)")
      .default(60)
      .describe("how far back, in minutes (1 to 1440, default 60)"),
  })
  .strict();

export const GpuHistoryResponse = z.object({
  /** Seconds between two samples of the answer (the sampling step, coarser for long windows). */
  stepSeconds: z.number(),
  devices: z.array(
    z.object({
      id: z.string(),
      node: z.string(),
      totalMiB: z.number(),
      simulated: z.boolean(),
      measured: z.boolean().describe("usedMiB is nvidia-smi's reading (true) or the scheduler's reservation (false)"),
      samples: z.array(z.tuple([z.number(), z.number(), z.number().nullable(), z.number()]).describe("[epochSeconds, usedMiB, utilPercent|null, reservedMiB]")),
    })
  ),
});
