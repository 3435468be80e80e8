/**
 * Turns a `POST /v1/runs` body into what the store accepts and the scheduler places: validates the
 * body, resolves a workflow reference, imports the workflow (native or ComfyUI), applies the run-time
 * rules, and refuses stages that no GPU of the pool could ever hold, naming the field or node at fault.
 */
import { z } from "zod";
import { ValidationError } from "../../config/errors.ts";
import { ComfyUiModeSchema, PriorityClassSchema, type PlatformConfig, type PriorityClass } from "../../config/schema.ts";
import { CostModel, parseWorkflow, stagesFor, type Stage, type WorkflowGraph } from "../../graph/index.ts";
import { issuesFromSchema } from "../../graph/schema-issues.ts";
import { didYouMean } from "../../graph/suggest.ts";
import { graphPriority } from "../../scheduler/from-graph.ts";
import type { GpuSpec } from "../../scheduler/inventory.ts";
import { evaluateSubmission } from "../../../policies/runtime/enforce.ts";
import type { NewRun } from "../store/types.ts";
import { ApiError } from "./api-error.ts";

/** The body of a submission (POST /v1/runs), also the schema /openapi.json documents it with. */
export const SubmitBodySchema = z
  .object({
    workflow: z
      .record(z.string(), z.unknown(), { error: "must be a workflow document (an object): a gpufabric Workflow or a ComfyUI API-format prompt" })
      .optional(),
    workflowRef: z.string({ error: "must be the name of a workflow of the platform config" }).min(1, "must not be empty").optional(),
    priority: PriorityClassSchema.optional(),
    inputs: z.record(z.string(), z.unknown(), { error: "must be an object of named inputs" }).optional(),
    /** ComfyUI workflows: ask for this run's prompt to be scheduled whole (`whole-graph`) or by segment. */
    comfyuiMode: ComfyUiModeSchema.optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.workflow === undefined) === (body.workflowRef === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["workflow"],
        message: "give exactly one of 'workflow' (a document) or 'workflowRef' (a workflow name from the platform config)",
      });
    }
  });

export interface PreparedRun {
  readonly newRun: NewRun;
  readonly graph: WorkflowGraph;
  readonly stages: readonly Stage[];
}

/** What a submission is checked against: the config, its workflows parsed once, and the pool's GPUs. */
export interface SubmissionContext {
  readonly config: PlatformConfig;
  readonly workflows: ReadonlyMap<string, WorkflowGraph>;
  readonly gpus: readonly GpuSpec[];
  readonly headroomMiB: number;
  readonly costModel: CostModel;
  /** Arrays and objects nested deeper than this in a submitted document are refused (default 64). */
  readonly maxJsonDepth?: number;
}

/** Parses every workflow the config declares, so a broken one stops the agent at start, not a client later. */
export function parseConfigWorkflows(config: PlatformConfig): Map<string, WorkflowGraph> {
  const graphs = new Map<string, WorkflowGraph>();
  config.workflows.forEach((wf, i) => {
    try {
      graphs.set(wf.name, parseWorkflow(wf.document, { format: wf.format, name: wf.name, source: `workflows[${i}].document` }));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      throw new ValidationError(
        "platform config",
        err.issues.map((issue) => ({ field: `workflows[${i}].document.${issue.field}`, message: issue.message }))
      );
    }
  });
  return graphs;
}

export function prepareRun(body: unknown, tenant: string, idempotencyKey: string | undefined, ctx: SubmissionContext): PreparedRun {
  const parsed = SubmitBodySchema.safeParse(body);
  if (!parsed.success) throw ApiError.fromIssues(issuesFromSchema(parsed.error, SubmitBodySchema));
  const request = parsed.data;

  // Another tenant's workflow is answered exactly as an unknown one: a 403 naming it would confirm that it
  // exists, and the list of names offered holds only the caller's own (as another tenant's run answers 404).
  if (request.workflowRef !== undefined) {
    const known = workflowsOf(tenant, ctx);
    if (!known.includes(request.workflowRef)) {
      throw new ApiError(
        400,
        "unknown-workflow",
        `workflowRef: no workflow '${request.workflowRef}' for tenant '${tenant}' in the platform config${didYouMean(request.workflowRef, known)} (${
          known.length ? `known: ${known.join(", ")}` : "it declares none for this tenant"
        }): submit the document as 'workflow' or use a declared name`,
        "workflowRef"
      );
    }
  }
  const decision = evaluateSubmission(ctx.config, { tenant, ...(request.workflowRef !== undefined && { workflow: request.workflowRef }) });
  if (!decision.allowed) throw new ApiError(403, "refused-by-rule", `refused by rule ${decision.ruleId}: ${decision.message}`, undefined, decision.ruleId);

  let graph: WorkflowGraph;
  if (request.workflowRef !== undefined) graph = ctx.workflows.get(request.workflowRef)!;
  else {
    try {
      graph = parseWorkflow(request.workflow, { source: "workflow", ...(ctx.maxJsonDepth !== undefined && { maxDepth: ctx.maxJsonDepth }) });
    } catch (err) {
      if (err instanceof ValidationError) throw ApiError.fromIssues(err.issues, "workflow");
      throw err;
    }
  }
  // The run's own ask, then the workflow's, then the platform's; a workflow declared whole must not be split.
  const declaredMode = request.workflowRef !== undefined ? ctx.config.workflows.find((w) => w.name === request.workflowRef)?.comfyuiMode : undefined;
  if (declaredMode === "whole-graph" && request.comfyuiMode === "segmented") {
    throw new ApiError(400, "invalid-request", `comfyuiMode: workflow '${request.workflowRef}' is declared whole-graph (it must not be split): leave comfyuiMode out`, "comfyuiMode");
  }
  const stages = stagesFor(graph, ctx.costModel, { comfyuiMode: request.comfyuiMode ?? declaredMode ?? ctx.config.comfyui?.mode ?? "segmented" });
  if (stages.length === 0) throw new ApiError(400, "invalid-request", "workflow: holds no stage to run", "workflow");
  checkFit(stages, graph, request.workflowRef === undefined ? "workflow" : `workflowRef(${request.workflowRef})`, ctx);

  const configured = request.workflowRef !== undefined ? ctx.config.workflows.find((w) => w.name === request.workflowRef)?.priority : undefined;
  const priority: PriorityClass = request.priority ?? configured ?? graphPriority(graph, stages);
  const document = request.workflowRef !== undefined ? { workflowRef: request.workflowRef } : request.workflow;
  return {
    graph,
    stages,
    newRun: {
      tenant,
      workflow: graph.name,
      format: graph.format,
      priority,
      ...(idempotencyKey !== undefined && { idempotencyKey }),
      document,
      ...(request.inputs !== undefined && { inputs: request.inputs }),
      stages,
    },
  };
}

/** The names of the config's workflows `tenant` may run, in declaration order. */
export function workflowsOf(tenant: string, ctx: SubmissionContext): string[] {
  return ctx.config.workflows.filter((w) => w.tenants.includes(tenant) && ctx.workflows.has(w.name)).map((w) => w.name);
}

/**
 * The stages a run of declared workflow `name` is scheduled as when it asks for no mode of its own: a
 * ComfyUI prompt's segments (or its one whole-graph stage), not its nodes; a native workflow's stages.
 */
export function declaredStages(name: string, ctx: SubmissionContext): readonly Stage[] {
  const graph = ctx.workflows.get(name);
  if (!graph) return [];
  const declaredMode = ctx.config.workflows.find((w) => w.name === name)?.comfyuiMode;
  return stagesFor(graph, ctx.costModel, { comfyuiMode: declaredMode ?? ctx.config.comfyui?.mode ?? "segmented" });
}

/** Refuses a stage that no node of the pool could hold, however long it waited. */
function checkFit(stages: readonly Stage[], graph: WorkflowGraph, prefix: string, ctx: SubmissionContext): void {
  const largest = Math.max(...ctx.gpus.map((g) => g.memoryMiB)) - ctx.headroomMiB;
  for (const [i, stage] of stages.entries()) {
    const { gpus, vramMiB } = stage.resources;
    if (gpus === 0) continue;
    const perNode = new Map<string, number>();
    for (const g of ctx.gpus) if (g.memoryMiB - ctx.headroomMiB >= vramMiB) perNode.set(g.node, (perNode.get(g.node) ?? 0) + 1);
    const best = Math.max(0, ...perNode.values());
    if (best >= gpus) continue;
    const field =
      graph.format === "comfyui"
        ? `${prefix}["${stage.comfyNodes?.[0] ?? stage.id}"]`
        : `${prefix}.spec.stages[${graph.stages.findIndex((s) => s.id === stage.id) >= 0 ? graph.stages.findIndex((s) => s.id === stage.id) : i}].resources`;
    const why =
      best === 0
        ? `needs ${vramMiB} MiB of VRAM per GPU but the largest GPU of pool '${ctx.config.deployment.pool}' offers ${largest} MiB (after ${ctx.headroomMiB} MiB headroom)`
        : `needs ${gpus} GPUs with ${vramMiB} MiB each on one node, but at most ${best} such GPUs share a node`;
    const what =
      graph.format === "comfyui"
        ? `ComfyUI node${(stage.comfyNodes?.length ?? 0) > 1 ? "s" : ""} ${(stage.comfyNodes ?? [stage.id]).join(", ")} (stage '${stage.id}')`
        : `stage '${stage.id}'`;
    throw new ApiError(422, "fits-no-gpu", `${field}: ${what} ${why}: lower its requirements or run it on a larger pool`, field);
  }
}
