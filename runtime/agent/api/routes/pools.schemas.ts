/** What GET /v1/pools/:pool/demand accepts and answers. */
import { z } from "zod";
import { DNS_LABEL } from "../../../config/schema.ts";

export const PoolDemandParams = z
  .object({
    pool: z.string().regex(DNS_LABEL, "must be a pool's name (a DNS-1123 label, e.g. 'batch-h100')").describe("the pool's name, as the platform config declares it"),
  })
  .strict();

export const PoolDemandQuery = z.object({}).strict();

const OwnStage = z.object({
  runId: z.string(),
  stageId: z.string(),
  gpus: z.number(),
  vramMiB: z.number(),
  priority: z.enum(["interactive", "batch"]),
  waitingS: z.number().describe("seconds the stage has waited for a GPU no worker in service offers"),
});

export const PoolDemandResponse = z.object({
  pool: z.string(),
  computedAt: z.string().describe("when the leader last computed the demand (ISO 8601)"),
  desiredWorkers: z.number().describe("workers (GPU nodes) the queued work needs now, within min and max: gpufabric_pool_desired_workers"),
  currentWorkers: z.number().describe("workers up or starting, not draining"),
  readyWorkers: z.number().describe("workers registered and not draining"),
  startingWorkers: z.number().describe("workers asked for that have not registered yet"),
  drainingWorkers: z.number().describe("workers finishing their stages before they exit"),
  minWorkers: z.number(),
  maxWorkers: z.number(),
  provider: z.enum(["kubernetes", "local", "none"]).describe("what sets the worker count: the scale subresource, local processes, or nothing (the metric is for an autoscaler such as KEDA)"),
  requestedWorkers: z.number().nullable().describe("the replicas the provider runs or starts, as it last said (null: no provider, or it could not be read)"),
  breakdown: z.object({
    interactiveWorkers: z.number().describe("new workers interactive stages need"),
    batchWorkers: z.number().describe("new workers batch stages need once they waited past the batch delay"),
    batchDeferred: z.number().describe("batch stages still waiting for freed GPUs before they ask for a worker"),
    surplus: z.number().describe("idle workers beyond what the queue needs (drained after the cooldown)"),
  }),
  reasons: z.array(z.string()),
  waiting: z.object({
    total: z.number().describe("waiting stages of every tenant that the number counts"),
    mine: z.array(OwnStage).describe("the caller's tenant's own waiting stages (no other tenant's stage is named)"),
  }),
  unplaceable: z.object({
    total: z.number().describe("waiting stages of every tenant that no worker of this pool could ever hold"),
    mine: z.array(z.object({ runId: z.string(), stageId: z.string(), reason: z.string() })),
  }),
  scalerError: z.string().nullable().describe("the provider's last failure (e.g. a missing Role), or null"),
});
