/**
 * gpufabric's own workflow format (`apiVersion: gpufabric.dev/v1`, `kind: Workflow`): the schema and
 * its conversion into a WorkflowGraph.
 */
import { z } from "zod";
import { ValidationError, formatPath, type FieldIssue } from "../config/errors.ts";
import { DNS_LABEL, PriorityClassSchema } from "../config/schema.ts";
import { findGraphIssues } from "./graph-check.ts";
import { GRAPH_LIMITS, type Stage, type WorkflowGraph } from "./model.ts";
import { tryParseQuantityMiB } from "./quantity.ts";
import { DEFAULT_RETRY, RETRY_LIMITS, type RetryPolicy } from "./retry.ts";
import { issuesFromSchema } from "./schema-issues.ts";

export const NATIVE_API_VERSION = "gpufabric.dev/v1";

/** Stage ids: 1 to 63 lowercase letters, digits, '-' and '_', starting with a letter or digit. */
export const STAGE_ID = /^[a-z0-9][-a-z0-9_]{0,62}$/;

/**
 * VRAM assumed for a GPU stage that declares none. Generous on purpose: an undeclared stage should wait
 * for room rather than overcommit a GPU. Declare `resources.vram` to pack stages tighter.
 */
export const DEFAULT_STAGE_VRAM_MIB = 16 * 1024;

// Stage ids end up in file, label and pod names, hence the DNS-label-like shape and length.
const stageId = z
  .string()
  .regex(STAGE_ID, "must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit (e.g. 'render-1')");

const vram = z
  .union([z.number(), z.string()], { error: "must be a Kubernetes quantity string such as '24Gi' or a number of MiB" })
  .transform((value, ctx) => {
    if (typeof value === "number") {
      if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
      ctx.addIssue({ code: "custom", message: "must be zero or more MiB, or a quantity string such as '24Gi'" });
      return z.NEVER;
    }
    const result = tryParseQuantityMiB(value);
    if (result.ok) return result.mib;
    ctx.addIssue({ code: "custom", message: result.message });
    return z.NEVER;
  });

const ResourcesSchema = z
  .object({
    gpus: z.number().int("must be a whole number of GPUs").min(0, "must be 0 (CPU only) or more").max(64, "must be at most 64 GPUs on one node").optional(),
    vram: vram.optional(),
    model: z.string().min(1, "must not be empty: name the model the stage loads, or leave it out").max(256).optional(),
  })
  .strict();

const RunSchema = z
  .object({
    command: z.array(z.string()).min(1, "must list the program and its arguments, e.g. ['node', 'render.mjs']").max(1024),
    image: z.string().min(1).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment variable names are letters, digits and '_', not starting with a digit"), z.string()).optional(),
    timeoutSeconds: z.number().positive("must be more than 0 seconds").optional(),
    /** `egress`: the stage may open network connections (only where the platform's isolation.allowEgress is true). */
    network: z.enum(["none", "egress"], { error: "must be 'none' (the default) or 'egress'" }).optional(),
  })
  .strict();

const EstimateSchema = z
  .object({
    durationSeconds: z.number().nonnegative("must be zero or more seconds"),
    modelLoadSeconds: z.number().nonnegative("must be zero or more seconds").optional(),
  })
  .strict();

const attemptsHint = `a whole number of attempts from 1 (no retry) to ${RETRY_LIMITS.maxAttempts}, e.g. ${DEFAULT_RETRY.attempts}`;
const exitCodeHint = "an exit code from 1 to 255 (0 means success and is never retried)";

// Every field optional: a stage's retry overrides the workflow's field by field, and the defaults fill the rest.
const RetrySchema = z
  .object({
    attempts: z
      .number({ error: `must be ${attemptsHint}` })
      .int(`must be ${attemptsHint}`)
      .min(1, `must be at least 1 (1 means no retry): ${attemptsHint}`)
      .max(RETRY_LIMITS.maxAttempts, `must be at most ${RETRY_LIMITS.maxAttempts}: ${attemptsHint}`)
      .optional(),
    backoffSeconds: z
      .number({ error: `must be a number of seconds from 0 to ${RETRY_LIMITS.maxBackoffSeconds}, e.g. ${DEFAULT_RETRY.backoffSeconds}` })
      .nonnegative("must be zero or more seconds (0 retries at once)")
      .max(RETRY_LIMITS.maxBackoffSeconds, `must be at most ${RETRY_LIMITS.maxBackoffSeconds} seconds: the wait doubles after each failure already`)
      .optional(),
    nonRetryableExitCodes: z
      .array(z.number({ error: `must be ${exitCodeHint}` }).int(`must be ${exitCodeHint}`).min(1, `must be ${exitCodeHint}`).max(255, `must be ${exitCodeHint}`), {
        error: "must be a list of exit codes, e.g. [2, 64]",
      })
      .max(255, "must list at most 255 exit codes")
      .optional(),
  })
  .strict();

/** A stage's retry policy: its own fields, then the workflow's, then the defaults; undefined when neither declares one. */
function mergeRetry(stage: z.output<typeof RetrySchema> | undefined, workflow: z.output<typeof RetrySchema> | undefined): RetryPolicy | undefined {
  if (stage === undefined && workflow === undefined) return undefined;
  return {
    attempts: stage?.attempts ?? workflow?.attempts ?? DEFAULT_RETRY.attempts,
    backoffSeconds: stage?.backoffSeconds ?? workflow?.backoffSeconds ?? DEFAULT_RETRY.backoffSeconds,
    nonRetryableExitCodes: [...new Set(stage?.nonRetryableExitCodes ?? workflow?.nonRetryableExitCodes ?? DEFAULT_RETRY.nonRetryableExitCodes)],
  };
}

const StageSchema = z
  .object({
    id: stageId,
    needs: z.array(z.string()).max(GRAPH_LIMITS.maxNeedsPerStage, `must list at most ${GRAPH_LIMITS.maxNeedsPerStage} stages`).optional(),
    resources: ResourcesSchema.optional(),
    run: RunSchema.optional(),
    priority: PriorityClassSchema.optional(),
    estimate: EstimateSchema.optional(),
    /** How the stage is tried again after a failure; overrides spec.retry field by field. */
    retry: RetrySchema.optional(),
  })
  .strict();

export const NativeWorkflowSchema = z
  .object({
    apiVersion: z.literal(NATIVE_API_VERSION, { error: `must be '${NATIVE_API_VERSION}'` }),
    kind: z.literal("Workflow", { error: "must be 'Workflow'" }),
    metadata: z
      .object({
        name: z.string().regex(DNS_LABEL, "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"),
        description: z.string().optional(),
      })
      .strict(),
    spec: z
      .object({
        priority: PriorityClassSchema.optional(),
        /** The retry policy of every stage that does not declare its own fields. */
        retry: RetrySchema.optional(),
        stages: z
          .array(StageSchema)
          .min(1, "must declare at least one stage")
          .max(GRAPH_LIMITS.maxStages, `must declare at most ${GRAPH_LIMITS.maxStages} stages: split the workflow`),
      })
      .strict(),
  })
  .strict();

export type NativeWorkflowDocument = z.input<typeof NativeWorkflowSchema>;

/** Validates a native workflow document and converts it; throws a ValidationError naming every bad field. */
export function parseNativeWorkflow(doc: unknown, source: string, nameOverride?: string): WorkflowGraph {
  // Refuse an oversized stage list before zod walks all of it.
  const rawStages = (doc as { spec?: { stages?: unknown } } | null)?.spec?.stages;
  if (Array.isArray(rawStages) && rawStages.length > GRAPH_LIMITS.maxStages) {
    throw new ValidationError(source, [{ field: "spec.stages", message: `has ${rawStages.length} stages, more than the limit of ${GRAPH_LIMITS.maxStages}: split the workflow` }]);
  }
  const result = NativeWorkflowSchema.safeParse(doc);
  if (!result.success) throw new ValidationError(source, issuesFromSchema(result.error, NativeWorkflowSchema));
  const spec = result.data.spec;

  const graphIssues: FieldIssue[] = findGraphIssues(
    spec.stages.map((stage, i) => ({
      id: stage.id,
      field: formatPath(["spec", "stages", i]),
      dependencies: (stage.needs ?? []).map((id, j) => ({ id, field: formatPath(["spec", "stages", i, "needs", j]) })),
    })),
    { noun: "stage", danglingFix: "name a stage declared under spec.stages", cycleFix: "remove one of these needs so the stages form a DAG" },
  );
  if (graphIssues.length > 0) throw new ValidationError(source, graphIssues);

  const stages: Stage[] = spec.stages.map((s) => {
    const gpus = s.resources?.gpus ?? 1;
    const retry = mergeRetry(s.retry, spec.retry);
    return {
      id: s.id,
      needs: s.needs ?? [],
      resources: {
        gpus,
        vramMiB: s.resources?.vram ?? (gpus > 0 ? DEFAULT_STAGE_VRAM_MIB : 0),
        ...(s.resources?.model !== undefined && { model: s.resources.model }),
      },
      ...(s.run && {
        run: {
          command: s.run.command,
          env: { ...s.run.env },
          ...(s.run.image !== undefined && { image: s.run.image }),
          ...(s.run.timeoutSeconds !== undefined && { timeoutSeconds: s.run.timeoutSeconds }),
          ...(s.run.network === "egress" && { network: "egress" as const }),
        },
      }),
      ...(s.priority !== undefined && { priority: s.priority }),
      ...(s.estimate && { estimate: { durationS: s.estimate.durationSeconds, modelLoadS: s.estimate.modelLoadSeconds ?? 0 } }),
      ...(retry !== undefined && { retry }),
    };
  });
  return {
    name: nameOverride ?? result.data.metadata.name,
    format: "native",
    ...(spec.priority !== undefined && { priority: spec.priority }),
    stages,
  };
}
