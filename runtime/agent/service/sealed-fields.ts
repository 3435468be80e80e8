/**
 * Sensitive database fields (the submitted workflow document, which holds ComfyUI prompts, and the run's
 * inputs) are sealed with envelope encryption before they reach the store. The context binds the tenant,
 * the run id and the field, so a sealed value copied into another run or tenant fails to open.
 */
import { openValue, sealValue, type KeyProvider, type ObjectContext } from "../../security/crypto/index.ts";
import { timeOrderedUuid } from "../store/ids.ts";
import type { ComfyNode, Stage, WorkflowGraph } from "../../graph/model.ts";
import type { NewRun } from "../store/types.ts";
import { isModelTag, type ModelTags } from "./model-tags.ts";

/** How a sealed field is stored: the envelope, base64, under one key no submitted document uses at its top. */
export const SEALED_KEY = "$sealed";
export type SealedField = "document" | "inputs";

export function fieldContext(tenant: string, runId: string, field: SealedField): ObjectContext {
  return { tenant, run: runId, objectId: `run.${field}` };
}

/**
 * What the store keeps of a stage's command: a placeholder. The command and its environment (which may
 * carry prompts or paths) live only in the sealed document; the loop runs accepted stages from memory and,
 * after a restart, restores each command from the opened document (restoreStageRuns).
 */
export const COMMAND_IN_DOCUMENT = "(sealed in the run document)";

function withoutCommand(stage: Stage): Stage {
  if (stage.run === undefined) return stage;
  return { ...stage, run: { command: [COMMAND_IN_DOCUMENT], env: {} } };
}

function commandIsSealed(stage: Stage): boolean {
  return stage.run !== undefined && stage.run.command.length === 1 && stage.run.command[0] === COMMAND_IN_DOCUMENT;
}

/** The stage as stored: its command left to the document, its model name replaced by its stand-in. */
function forStore(stage: Stage, modelTags: ModelTags | undefined): Stage {
  const stored = withoutCommand(stage);
  const model = stored.resources.model;
  if (modelTags === undefined || typeof model !== "string") return stored;
  return { ...stored, resources: { ...stored.resources, model: modelTags.tag(model) } };
}

/**
 * Stored stages with their commands (and, given the stand-in key, their model names) restored from the
 * run's (opened) workflow graph; undefined when a sealed command has no counterpart there (the document
 * could not be opened or no longer matches). A model name not found there keeps its stand-in, which
 * still matches the stand-ins of the same model.
 */
export function restoreStageRuns(stages: readonly Stage[], graph: WorkflowGraph | undefined, modelTags?: ModelTags): Stage[] | undefined {
  const restored: Stage[] = [];
  const byId = graph === undefined ? undefined : new Map(graph.stages.map((s) => [s.id, s]));
  const nodes = graph?.comfyNodes === undefined ? undefined : new Map(graph.comfyNodes.map((n) => [n.id, n]));
  for (const stored of stages) {
    let stage = stored;
    if (commandIsSealed(stage)) {
      const run = byId?.get(stage.id)?.run;
      if (run === undefined) return undefined;
      stage = { ...stage, run };
    }
    const model = stage.resources.model;
    if (modelTags !== undefined && typeof model === "string" && isModelTag(model)) {
      const name = modelCandidates(stage, byId, nodes).find((candidate) => modelTags.tag(candidate) === model);
      if (name !== undefined) stage = { ...stage, resources: { ...stage.resources, model: name } };
    }
    restored.push(stage);
  }
  return restored;
}

/**
 * Where a stage's model name can be in its document: a native stage's declared model; for a ComfyUI
 * stage, the model of each of its nodes as imported and every string its nodes were given (`ckpt_name`...).
 */
function modelCandidates(stage: Stage, byId: ReadonlyMap<string, Stage> | undefined, nodes: ReadonlyMap<string, ComfyNode> | undefined): string[] {
  const candidates: string[] = [];
  const declared = byId?.get(stage.id)?.resources.model;
  if (declared !== undefined) candidates.push(declared);
  for (const nodeId of stage.comfyNodes ?? []) {
    const own = byId?.get(nodeId)?.resources.model;
    if (own !== undefined) candidates.push(own);
    for (const value of Object.values(nodes?.get(nodeId)?.inputs ?? {})) if (typeof value === "string") candidates.push(value);
  }
  return candidates;
}

/**
 * The run with its id chosen here, its document and inputs sealed, its stages' commands left to the
 * document and (given the stand-in key) their model names replaced by stand-ins.
 */
export async function sealRunFields(keys: KeyProvider, run: NewRun, modelTags?: ModelTags): Promise<NewRun & { id: string }> {
  const id = run.id ?? timeOrderedUuid();
  const seal = async (field: SealedField, value: unknown) => ({
    [SEALED_KEY]: (await sealValue(keys, Buffer.from(JSON.stringify(value ?? null), "utf8"), fieldContext(run.tenant, id, field))).toString("base64"),
  });
  return {
    ...run,
    id,
    document: await seal("document", run.document),
    stages: run.stages.map((stage) => forStore(stage, modelTags)),
    ...(run.inputs !== undefined && { inputs: await seal("inputs", run.inputs) }),
  };
}

export function isSealed(stored: unknown): stored is { [SEALED_KEY]: string } {
  return typeof stored === "object" && stored !== null && typeof (stored as Record<string, unknown>)[SEALED_KEY] === "string" && Object.keys(stored).length === 1;
}

/** The plaintext value of a stored field; a field stored before sealing existed is returned as it is. */
export async function openRunField(keys: KeyProvider, tenant: string, runId: string, field: SealedField, stored: unknown): Promise<unknown> {
  if (!isSealed(stored)) return stored;
  const plain = await openValue(keys, Buffer.from(stored[SEALED_KEY], "base64"), fieldContext(tenant, runId, field));
  return JSON.parse(plain.toString("utf8")) as unknown;
}

/**
 * The run's inputs as its stages see them (`run-inputs.json`): read from the store once per run, kept
 * sealed in memory, and opened for each attempt. A run submitted without inputs gets `{}`.
 */
export class RunInputsSource {
  private readonly stored = new Map<string, unknown>();

  constructor(
    private readonly keys: KeyProvider,
    private readonly read: (tenant: string, runId: string) => Promise<unknown>
  ) {}

  async open(run: { id: string; tenant: string }): Promise<Readonly<Record<string, unknown>>> {
    const cached = this.stored.has(run.id);
    let stored = cached ? this.stored.get(run.id) : await this.read(run.tenant, run.id);
    this.stored.set(run.id, stored);
    let value: unknown;
    try {
      value = await openRunField(this.keys, run.tenant, run.id, "inputs", stored);
    } catch (err) {
      if (!cached) throw err;
      // A key rotation may have rewrapped the field (and retired the old version) since it was read.
      stored = await this.read(run.tenant, run.id);
      this.stored.set(run.id, stored);
      value = await openRunField(this.keys, run.tenant, run.id, "inputs", stored);
    }
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  }

  /** Drops a run once nothing of it runs any more. */
  forget(runId: string): void {
    this.stored.delete(runId);
  }
}
