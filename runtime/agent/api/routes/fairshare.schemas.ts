/** What GET /v1/fairshare answers (it takes no parameters). */
import { z } from "zod";

export const FairshareQuery = z.object({}).strict();

const GpuSeconds = z.object({ interactive: z.number(), batch: z.number() });

export const FairshareResponse = z.object({
  /** GPUs the share is counted against. */
  gpus: z.number(),
  tenants: z.array(
    z.object({
      tenant: z.string().describe('the caller\'s tenant by name, or "(other tenants)": every other tenant summed'),
      weight: z.number(),
      share: z.number().describe("fraction of the GPUs its running stages hold now (0 to 1)"),
      quota: z.object({ gpus: z.number().nullable(), vramMiB: z.number().nullable(), usedGpus: z.number(), usedVramMiB: z.number() }).nullable(),
      queuedGpuSeconds: GpuSeconds.describe("estimated GPU-seconds of its ready and waiting stages, by priority class"),
    })
  ),
});
