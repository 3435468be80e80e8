/**
 * Checks a run before the store accepts it: the store is an edge of the agent (a Postgres store may
 * be written to by other agents), so it refuses anything that would leave a run unable to finish.
 */
import { z } from "zod";
import { ValidationError, issuesFromZod, type FieldIssue } from "../../config/errors.ts";
import { DNS_LABEL } from "../../config/schema.ts";
import { GRAPH_LIMITS } from "../../graph/model.ts";
import type { NewRun } from "./types.ts";

/** Idempotency keys: what clients typically send (UUIDs, hashes, request ids). */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

const StageShape = z.object({
  id: z.string().min(1, "must not be empty").max(GRAPH_LIMITS.maxIdLength, `must be at most ${GRAPH_LIMITS.maxIdLength} characters`),
  needs: z.array(z.string()).max(GRAPH_LIMITS.maxNeedsPerStage),
  resources: z.object({
    gpus: z.number().int().min(0, "must be 0 or more GPUs"),
    vramMiB: z.number().int().min(0, "must be 0 or more MiB"),
    model: z.string().optional(),
  }),
});

const NewRunShape = z.object({
  id: z.uuid({ error: "must be a UUID (the caller names the run when it seals fields bound to its id)" }).optional(),
  tenant: z.string().regex(DNS_LABEL, "must be a tenant name (a DNS-1123 label) from the platform config"),
  workflow: z.string().min(1, "must name the workflow"),
  format: z.enum(["native", "comfyui"]),
  priority: z.enum(["interactive", "batch"]),
  idempotencyKey: z.string().regex(IDEMPOTENCY_KEY, "must be 1 to 255 printable ASCII characters without spaces, e.g. a UUID").optional(),
  submittedBy: z
    .string()
    .min(1, "must name the submitting subject")
    .max(255, "must be at most 255 characters")
    .regex(/^[^\x00-\x1f\x7f]+$/, "must not hold control characters")
    .optional(),
  inputs: z.record(z.string(), z.unknown()).optional(),
  stages: z.array(StageShape).min(1, "must hold at least one stage").max(GRAPH_LIMITS.maxStages, `must hold at most ${GRAPH_LIMITS.maxStages} stages`),
});

/** Throws a ValidationError naming every field at fault. */
export function validateNewRun(run: NewRun): void {
  const parsed = NewRunShape.safeParse(run);
  if (!parsed.success) throw new ValidationError("run", issuesFromZod(parsed.error));
  const issues: FieldIssue[] = [];
  const index = new Map<string, number>();
  run.stages.forEach((stage, i) => {
    if (index.has(stage.id)) issues.push({ field: `stages[${i}].id`, message: `duplicate stage id '${stage.id}': stage ids must be unique within a run` });
    else index.set(stage.id, i);
  });
  run.stages.forEach((stage, i) =>
    stage.needs.forEach((need, j) => {
      if (need === stage.id) issues.push({ field: `stages[${i}].needs[${j}]`, message: `stage '${stage.id}' needs itself: remove it from its own needs` });
      else if (!index.has(need)) issues.push({ field: `stages[${i}].needs[${j}]`, message: `unknown stage '${need}': name a stage of this run` });
    })
  );
  if (issues.length === 0) {
    const cycle = findCycleMember(run);
    if (cycle !== undefined) {
      issues.push({ field: `stages[${index.get(cycle)}].needs`, message: `stage '${cycle}' is on a dependency cycle: a run's stages must form a DAG` });
    }
  }
  try {
    JSON.stringify(run.document ?? null);
  } catch (err) {
    issues.push({ field: "document", message: `must be JSON-serializable: ${(err as Error).message}` });
  }
  if (issues.length > 0) throw new ValidationError("run", issues);
}

/** Kahn's algorithm: a stage left unsorted lies on (or behind) a cycle. */
function findCycleMember(run: NewRun): string | undefined {
  const pending = new Map(run.stages.map((s) => [s.id, new Set(s.needs).size]));
  const dependents = new Map<string, string[]>();
  for (const s of run.stages) for (const need of new Set(s.needs)) dependents.set(need, [...(dependents.get(need) ?? []), s.id]);
  const queue = run.stages.filter((s) => s.needs.length === 0).map((s) => s.id);
  let sorted = 0;
  while (queue.length > 0) {
    const id = queue.pop()!;
    sorted++;
    for (const d of dependents.get(id) ?? []) {
      const left = pending.get(d)! - 1;
      pending.set(d, left);
      if (left === 0) queue.push(d);
    }
  }
  if (sorted === run.stages.length) return undefined;
  return run.stages.find((s) => pending.get(s.id)! > 0)!.id;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Checks what an executor reports before it is recorded: the store refuses malformed records. */
export function validateTransition(
  what: string,
  input: {
    readonly gpus?: readonly string[];
    readonly pid?: number | null;
    readonly exitCode?: number | null;
    readonly peakVramMiB?: number | null;
    readonly artifacts?: ReadonlyArray<{ readonly name: string; readonly bytes: number; readonly sha256: string; readonly path: string }>;
  }
): void {
  const issues: FieldIssue[] = [];
  if (input.gpus !== undefined) {
    if (!Array.isArray(input.gpus)) issues.push({ field: "gpus", message: "must be a list of device ids" });
    else {
      input.gpus.forEach((g, i) => {
        if (typeof g !== "string" || g === "") issues.push({ field: `gpus[${i}]`, message: "must be a device id (a non-empty string)" });
      });
    }
  }
  const wholeOrNull = (field: string, value: number | null | undefined, min: number) => {
    if (value !== undefined && value !== null && !(Number.isInteger(value) && value >= min))
      issues.push({ field, message: `must be a whole number of ${min} or more, or null (got ${value})` });
  };
  wholeOrNull("pid", input.pid, 1);
  wholeOrNull("exitCode", input.exitCode, 0);
  wholeOrNull("peakVramMiB", input.peakVramMiB, 0);
  input.artifacts?.forEach((a, i) => {
    if (typeof a.name !== "string" || a.name === "" || /[/\\\x00-\x1f]/.test(a.name) || a.name === "." || a.name === "..") {
      issues.push({ field: `artifacts[${i}].name`, message: "must be a plain file name (no path separators or control characters)" });
    }
    if (!Number.isInteger(a.bytes) || a.bytes < 0) issues.push({ field: `artifacts[${i}].bytes`, message: `must be a whole number of bytes (got ${a.bytes})` });
    if (typeof a.sha256 !== "string" || !SHA256.test(a.sha256)) issues.push({ field: `artifacts[${i}].sha256`, message: "must be 64 lowercase hex digits" });
    if (typeof a.path !== "string" || a.path === "") issues.push({ field: `artifacts[${i}].path`, message: "must be where the committed file lies" });
  });
  if (issues.length > 0) throw new ValidationError(what, issues);
}
