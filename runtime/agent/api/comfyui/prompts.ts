/**
 * A run seen as a ComfyUI prompt: the document it was submitted with (prompt, client id, number, extra
 * data), its outputs read from the manifests its stages committed, and its history entry in ComfyUI's
 * shape. The files of a run are addressed as ComfyUI clients address them: `filename`, `type`, and a
 * `subfolder` that starts with the prompt id, so names the servers gave stay unique across the fabric.
 */
import { relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { openInside } from "../../../security/names/index.ts";
import { COMFY_OUTPUTS_ARTIFACT, type ComfyOutputsManifest } from "../../executors/comfyui/contract.ts";
import { openRunField } from "../../service/sealed-fields.ts";
import { TERMINAL_RUN_STATUSES, type ArtifactRecord, type RunDetail, type RunRecord } from "../../store/types.ts";
import type { HttpParts } from "../parts.ts";
import type { ApiPrompt } from "./validate.ts";

type JsonObject = Record<string, unknown>;

/** What the document of a run submitted through `POST /prompt` holds besides the prompt. */
export interface PromptDocument {
  readonly prompt: ApiPrompt;
  readonly client_id?: string;
  readonly number: number;
  readonly extra_data: JsonObject;
  readonly outputs: string[];
}

/** A file of a prompt's outputs: where its bytes are, and how clients name it. */
export interface PromptFile {
  readonly node: string;
  readonly filename: string;
  /** The subfolder as clients see it: `<prompt id>` or `<prompt id>/<the server's subfolder>`. */
  readonly subfolder: string;
  readonly type: string;
  readonly artifact: ArtifactRecord;
}

export interface PromptOutputs {
  /** Each output node's UI dict, its files addressed as clients address them. */
  readonly nodes: Record<string, JsonObject>;
  readonly files: PromptFile[];
  readonly executed: string[];
}

export interface HistoryEntry {
  prompt: [number, string, ApiPrompt, JsonObject, string[]];
  outputs: Record<string, JsonObject>;
  status: { status_str: "success" | "error"; completed: boolean; messages: Array<[string, JsonObject]> };
  meta: Record<string, { node_id: string; display_node: string; parent_node: null; real_node_id: string }>;
}

/** Keys of extra_data that hold a client's credentials for ComfyUI's own services: never shown back (execution.py). */
const SENSITIVE_EXTRA_DATA_KEYS = ["auth_token_comfy_org", "api_key_comfy_org"];

export function publicExtraData(extra: JsonObject): JsonObject {
  const copy = { ...extra };
  for (const key of SENSITIVE_EXTRA_DATA_KEYS) delete copy[key];
  return copy;
}

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const isFileEntry = (v: unknown): v is { filename: string; subfolder?: string; type?: string; artifact: string } =>
  isObject(v) && typeof v.filename === "string" && typeof v.artifact === "string";

/** Entries of terminal runs never change: they are kept, up to this many. */
const CACHE_SIZE = 1024;

export class ComfyPrompts {
  private readonly documents = new Map<string, PromptDocument>();
  private readonly outputsCache = new Map<string, PromptOutputs>();
  private readonly entries = new Map<string, HistoryEntry>();

  constructor(private readonly parts: HttpParts) {}

  /** The prompt document of a run, or undefined for a run not submitted as a ComfyUI prompt. */
  async document(detail: RunDetail): Promise<PromptDocument | undefined> {
    const cached = this.documents.get(detail.run.id);
    if (cached !== undefined) return cached;
    if (detail.run.format !== "comfyui") return undefined;
    const doc = await openRunField(this.parts.keys, detail.run.tenant, detail.run.id, "document", detail.document);
    if (!isObject(doc)) return undefined;
    // A prompt submitted through /v1/runs is a bare prompt or a /prompt body: both read as prompts here.
    const prompt = (isObject(doc.prompt) && !("class_type" in doc.prompt) ? doc.prompt : doc) as ApiPrompt;
    const document: PromptDocument = {
      prompt,
      ...(typeof doc.client_id === "string" && { client_id: doc.client_id }),
      number: typeof doc.number === "number" ? doc.number : 0,
      extra_data: isObject(doc.extra_data) ? doc.extra_data : {},
      outputs: Array.isArray(doc.outputs) ? doc.outputs.filter((o): o is string => typeof o === "string") : [],
    };
    remember(this.documents, detail.run.id, document);
    return document;
  }

  /** The outputs of the run's succeeded stages, from their manifests. */
  async outputs(detail: RunDetail): Promise<PromptOutputs> {
    const terminal = TERMINAL_RUN_STATUSES.includes(detail.run.status);
    const cached = terminal ? this.outputsCache.get(detail.run.id) : undefined;
    if (cached !== undefined) return cached;
    const nodes: Record<string, JsonObject> = {};
    const files: PromptFile[] = [];
    const executed: string[] = [];
    for (const manifestArtifact of detail.artifacts.filter((a) => a.name === COMFY_OUTPUTS_ARTIFACT)) {
      const manifest = JSON.parse((await this.readArtifact(detail.run.tenant, manifestArtifact)).toString("utf8")) as ComfyOutputsManifest;
      executed.push(...(manifest.executed ?? []));
      const sameAttempt = detail.artifacts.filter((a) => a.attemptId === manifestArtifact.attemptId);
      for (const [node, ui] of Object.entries(manifest.nodes ?? {})) {
        const shown: JsonObject = {};
        for (const [key, value] of Object.entries(ui)) {
          if (!Array.isArray(value)) {
            shown[key] = value;
            continue;
          }
          shown[key] = value.map((item) => {
            if (!isFileEntry(item)) return item;
            const artifact = sameAttempt.find((a) => a.name === item.artifact);
            const { artifact: _held, ...visible } = item;
            const subfolder = item.subfolder ? `${detail.run.id}/${item.subfolder}` : detail.run.id;
            if (artifact !== undefined) files.push({ node, filename: item.filename, subfolder, type: item.type ?? "output", artifact });
            return { ...visible, subfolder };
          });
        }
        nodes[node] = { ...(nodes[node] ?? {}), ...shown };
      }
    }
    const outputs = { nodes, files, executed };
    if (terminal) remember(this.outputsCache, detail.run.id, outputs);
    return outputs;
  }

  /** The history entry of a finished prompt (ComfyUI writes one only when a prompt ends), else undefined. */
  async historyEntry(detail: RunDetail): Promise<HistoryEntry | undefined> {
    if (!TERMINAL_RUN_STATUSES.includes(detail.run.status)) return undefined;
    // A prompt deleted from the queue before it ran leaves no history, as in ComfyUI.
    if (detail.run.status === "cancelled" && detail.attempts.length === 0) return undefined;
    const cached = this.entries.get(detail.run.id);
    if (cached !== undefined) return cached;
    const doc = await this.document(detail);
    if (doc === undefined) return undefined;
    const outputs = await this.outputs(detail);
    const meta: HistoryEntry["meta"] = {};
    for (const node of Object.keys(outputs.nodes)) meta[node] = { node_id: node, display_node: node, parent_node: null, real_node_id: node };
    const entry: HistoryEntry = {
      prompt: [doc.number, detail.run.id, doc.prompt, publicExtraData(doc.extra_data), doc.outputs],
      outputs: outputs.nodes,
      status: {
        status_str: detail.run.status === "succeeded" ? "success" : "error",
        completed: detail.run.status === "succeeded",
        messages: await this.messages(detail, doc),
      },
      meta,
    };
    // A finished prompt's entry never changes.
    remember(this.entries, detail.run.id, entry);
    return entry;
  }

  /** A queue item as `GET /queue` lists it: [number, prompt_id, prompt, extra_data, outputs_to_execute]. */
  async queueItem(detail: RunDetail): Promise<[number, string, ApiPrompt, JsonObject, string[]] | undefined> {
    const doc = await this.document(detail);
    return doc === undefined ? undefined : [doc.number, detail.run.id, doc.prompt, publicExtraData(doc.extra_data), doc.outputs];
  }

  /** The execution messages of a finished prompt, from its stored events. */
  private async messages(detail: RunDetail, doc: PromptDocument): Promise<Array<[string, JsonObject]>> {
    const events = (await this.parts.store.eventsSince(detail.run.tenant, detail.run.id, 0, 10_000)) ?? [];
    const promptId = detail.run.id;
    const messages: Array<[string, JsonObject]> = [];
    const started = events.find((e) => e.type === "stage.running" || e.type === "run.running");
    if (started) {
      const timestamp = Date.parse(started.at);
      messages.push(["execution_start", { prompt_id: promptId, timestamp }], ["execution_cached", { nodes: [], prompt_id: promptId, timestamp }]);
    }
    const end = events.findLast((e) => e.type === "run.succeeded" || e.type === "run.failed" || e.type === "run.cancelled");
    const timestamp = end ? Date.parse(end.at) : Date.now();
    if (detail.run.status === "succeeded") messages.push(["execution_success", { prompt_id: promptId, timestamp }]);
    else {
      const failure = failureOf(detail, doc);
      const executed = (await this.outputs(detail)).executed;
      if (detail.run.status === "cancelled") {
        messages.push(["execution_interrupted", { prompt_id: promptId, node_id: failure.node, node_type: failure.classType, executed, timestamp }]);
      } else {
        messages.push(["execution_error", { ...errorMessage(promptId, failure, executed), timestamp }]);
      }
    }
    return messages;
  }

  /** The bytes of a (small) artifact, decrypted. */
  async readArtifact(tenant: string, artifact: ArtifactRecord): Promise<Buffer> {
    const stream = await this.openArtifact(tenant, artifact);
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  /** An artifact's plaintext as a stream; the path is the store's, checked to lie inside the artifacts folder. */
  async openArtifact(tenant: string, artifact: ArtifactRecord): Promise<Readable> {
    const root = this.parts.sealer.artifactsRoot;
    const handle = await openInside(root, relative(root, artifact.path).split(sep));
    const stream = this.parts.sealer.openArtifact(tenant, artifact.path, handle);
    stream.once("close", () => void handle.close().catch(() => undefined));
    stream.once("end", () => void handle.close().catch(() => undefined));
    return stream;
  }
}

export interface PromptFailure {
  readonly node: string;
  readonly classType: string;
  readonly message: string;
  readonly exceptionType: string;
}

/** The node a failed prompt stopped at and why, from its last failed attempt (the executor's message names the node). */
export function failureOf(detail: RunDetail, doc: PromptDocument): PromptFailure {
  const failed = [...detail.attempts].reverse().find((a) => a.status === "failed" && a.reason !== null);
  const reason = failed?.reason ?? (detail.run.status === "cancelled" ? "interrupted" : "the prompt failed");
  const named = /node '?([A-Za-z0-9_.:-]+)'?/.exec(reason)?.[1];
  const stage = failed ? detail.stages.find((s) => s.stageId === failed.stageId) : undefined;
  const node = named !== undefined && doc.prompt[named] !== undefined ? named : (stage?.spec.comfyNodes?.[0] ?? Object.keys(doc.prompt)[0] ?? "");
  const exceptionType = /out of memory/i.test(reason) ? "torch.OutOfMemoryError" : (/\b([A-Za-z_.]*(?:Error|Exception))\b/.exec(reason)?.[1] ?? "RuntimeError");
  return { node, classType: doc.prompt[node]?.class_type ?? "", message: reason, exceptionType };
}

export function errorMessage(promptId: string, failure: PromptFailure, executed: string[]): JsonObject {
  return {
    prompt_id: promptId,
    node_id: failure.node,
    node_type: failure.classType,
    executed,
    exception_message: failure.message,
    exception_type: failure.exceptionType,
    traceback: [],
    current_inputs: {},
    current_outputs: [],
  };
}

/** Runs of a tenant submitted as ComfyUI prompts, oldest first (as ComfyUI keeps its history). */
export function comfyRuns(runs: readonly RunRecord[]): RunRecord[] {
  return runs.filter((r) => r.format === "comfyui").sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > CACHE_SIZE) map.delete(map.keys().next().value as string);
}
