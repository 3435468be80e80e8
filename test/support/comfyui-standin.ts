/**
 * A stand-in ComfyUI server for tests. ComfyUI itself (Python, torch, model weights) cannot run in
 * the test environment, so the `comfyui` executor and the compatible API are tested against this
 * server instead. It speaks the subset of ComfyUI's HTTP and WebSocket protocol (`server.py`,
 * `execution.py`, `main.py prompt_worker`) that clients rely on, with ComfyUI's orderings and error
 * shapes, and "renders" small real PNGs so outputs can be fetched, told apart and handed between
 * servers. It is never shipped as a worker.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { deflateSync } from "node:zlib";

// `ws` is in node_modules (a transitive dependency) without type declarations; these are the few
// members used here and by the tests, loaded through require so that no ambient module is needed.
export interface WsSocket {
  readonly readyState: number;
  send(data: string | Buffer): void;
  close(code?: number): void;
  terminate(): void;
  on(event: "message", cb: (data: Buffer, isBinary: boolean) => void): this;
  on(event: "open" | "close", cb: () => void): this;
  on(event: "error", cb: (err: Error) => void): this;
}
interface WsServer {
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, cb: (ws: WsSocket) => void): void;
  close(): void;
}
// ws 7 (the version present) exports the client class itself, with the server as its `Server`.
interface WsModule {
  new (url: string): WsSocket;
  Server: new (opts: { noServer: true }) => WsServer;
}
const ws = createRequire(import.meta.url)("ws") as WsModule;
/** Node's `ws` client, typed, for tests that talk to the stand-in (or to our own `/ws`). */
export const WebSocketClient: new (url: string) => WsSocket = ws;

type InputSpec = [string | string[], Record<string, unknown>?];
export interface NodeInfo {
  input: { required: Record<string, InputSpec>; optional?: Record<string, InputSpec> };
  output: string[];
  output_node: boolean;
  category?: string;
}
export interface FailNode { class_type: string; exception_type: string; message: string }
export interface StandinOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** The server refuses connections (nothing listens) until this long after start, like a booting ComfyUI. */
  startDelayMs?: number;
  /** Time each node "runs"; progress steps of a sampler share it. */
  nodeDelayMs?: number;
  /** The first node of this class raises, giving ComfyUI's `execution_error`. */
  failNode?: FailNode;
  /** This long after becoming ready, the server drops every socket and stops answering, as a crashed process. */
  crashAfterMs?: number;
  /** Model folders as `/models/{folder}` lists them; checkpoint and upscale-model names are validated against them. */
  models?: Record<string, string[]>;
  /**
   * Gap between `execution_success` and the history entry being written (default 50 ms). In ComfyUI the
   * two happen on different steps of the prompt worker; the gap makes the ordering observable, so a
   * client that reads history on `execution_success` instead of the final `executing` is caught.
   */
  historyLagMs?: number;
  /** More node classes (or overrides); an entry without `input.required` accepts any inputs. */
  objectInfo?: Record<string, Partial<NodeInfo>>;
  /** Called as each prompt starts executing (after `execution_start`), e.g. to crash the server mid-prompt. */
  onPromptStart?: (promptId: string) => void;
}
export interface ComfyStandin {
  url: string;
  port: number;
  /** Resolves once the server accepts connections (after `startDelayMs`). */
  ready: Promise<void>;
  close(): Promise<void>;
  /** Ids of the prompts accepted, in order. */
  prompts(): string[];
  interrupts(): number;
  /** The `prompt_id` of each `POST /interrupt` (null for a global interrupt), in order. */
  interruptTargets(): (string | null)[];
  /** Names of the images uploaded to `input`. */
  uploads(): string[];
  /** Crash now (what `crashAfterMs` does later). */
  crash(): void;
}

const DEFAULT_MODELS: Record<string, string[]> = {
  checkpoints: ["v1-5-pruned-emaonly.safetensors"],
  upscale_models: ["RealESRGAN_x4plus.pth"],
  vae: [],
  loras: [],
};
// The combo inputs the stand-in checks: those naming a model file, the inventory the executor's
// model checks read from `/object_info` and `/models`. Other combos (sampler names…) pass unchecked.
const MODEL_INPUTS: Record<string, [string, string]> = {
  CheckpointLoaderSimple: ["ckpt_name", "checkpoints"],
  UpscaleModelLoader: ["model_name", "upscale_models"],
};
const SAMPLERS = new Set(["KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"]);

function builtinInfo(models: Record<string, string[]>, inputs: string[]): Record<string, NodeInfo> {
  const n = (required: Record<string, InputSpec>, output: string[], category: string, output_node = false): NodeInfo =>
    ({ input: { required }, output, output_node, category });
  const INT: InputSpec = ["INT", { default: 0 }];
  const FLOAT: InputSpec = ["FLOAT", { default: 1 }];
  return {
    CheckpointLoaderSimple: n({ ckpt_name: [models.checkpoints ?? []] }, ["MODEL", "CLIP", "VAE"], "loaders"),
    CLIPTextEncode: n({ text: ["STRING", { multiline: true }], clip: ["CLIP"] }, ["CONDITIONING"], "conditioning"),
    EmptyLatentImage: n({ width: INT, height: INT, batch_size: INT }, ["LATENT"], "latent"),
    KSampler: n({
      model: ["MODEL"], seed: INT, steps: INT, cfg: FLOAT, sampler_name: [["euler", "euler_ancestral", "dpmpp_2m"]],
      scheduler: [["normal", "karras", "simple"]], positive: ["CONDITIONING"], negative: ["CONDITIONING"],
      latent_image: ["LATENT"], denoise: FLOAT,
    }, ["LATENT"], "sampling"),
    VAEDecode: n({ samples: ["LATENT"], vae: ["VAE"] }, ["IMAGE"], "latent"),
    SaveImage: n({ images: ["IMAGE"], filename_prefix: ["STRING", { default: "ComfyUI" }] }, [], "image", true),
    LoadImage: n({ image: [inputs, { image_upload: true }] }, ["IMAGE", "MASK"], "image"),
    ImageScaleBy: n({ image: ["IMAGE"], upscale_method: [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]], scale_by: FLOAT }, ["IMAGE"], "image/upscaling"),
    UpscaleModelLoader: n({ model_name: [models.upscale_models ?? []] }, ["UPSCALE_MODEL"], "loaders"),
    ImageUpscaleWithModel: n({ upscale_model: ["UPSCALE_MODEL"], image: ["IMAGE"] }, ["IMAGE"], "image/upscaling"),
  };
}

// ---- PNG: a real, valid image whose size follows the graph and whose tEXt names the node ----
const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A solid-colour RGB PNG of `width`×`height` with a `standin` tEXt entry (readable by {@link pngInfo}). */
export function makePng(width: number, height: number, text: string): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.alloc(1 + width * 3, 0x80); row[0] = 0; // filter byte "none", then grey pixels
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr), chunk("tEXt", Buffer.from(`standin\0${text}`, "latin1")),
    chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0)),
  ]);
}
/** Width, height and `standin` text of a PNG, or null when the bytes are not a PNG. */
export function pngInfo(png: Buffer): { width: number; height: number; text: string | null } | null {
  if (png.length < 33 || png.readUInt32BE(0) !== 0x89504e47) return null;
  let text: string | null = null;
  for (let at = 8; at + 8 <= png.length;) {
    const len = png.readUInt32BE(at); const type = png.toString("latin1", at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    if (type === "tEXt" && data.toString("latin1").startsWith("standin\0")) text = data.toString("latin1").slice(8);
    at += 12 + len;
  }
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), text };
}

// ---- validation, in ComfyUI's shapes (server.py post_prompt, execution.validate_prompt) ----
type Prompt = Record<string, { class_type?: unknown; inputs?: Record<string, unknown> }>;
interface ErrorItem { type: string; message: string; details: string; extra_info: Record<string, unknown> }
interface NodeErrors { errors: ErrorItem[]; dependent_outputs: string[]; class_type: string }
type Validation = { ok: true; outputs: string[]; nodeErrors: Record<string, NodeErrors> }
  | { ok: false; error: ErrorItem; nodeErrors: Record<string, NodeErrors> };

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && typeof v[1] === "number";
const err = (type: string, message: string, details = "", extra_info: Record<string, unknown> = {}): ErrorItem =>
  ({ type, message, details, extra_info });

function validatePrompt(prompt: unknown, info: Record<string, NodeInfo>): Validation {
  if (prompt === null || typeof prompt !== "object" || Array.isArray(prompt)) {
    return { ok: false, error: err("no_prompt", "No prompt provided", "No prompt provided"), nodeErrors: {} };
  }
  const graph = prompt as Prompt;
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(graph)) {
    if (typeof node?.class_type !== "string") {
      return { ok: false, error: err("invalid_prompt", "Cannot execute because a node is missing the class_type property.", `Node ID '#${id}'`), nodeErrors: {} };
    }
    const cls = info[node.class_type];
    if (!cls) {
      return { ok: false, error: err("invalid_prompt", `Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`), nodeErrors: {} };
    }
    if (cls.output_node) outputs.push(id);
  }
  if (outputs.length === 0) return { ok: false, error: err("prompt_no_outputs", "Prompt has no outputs"), nodeErrors: {} };
  const nodeErrors: Record<string, NodeErrors> = {};
  const valid: string[] = [];
  const details: string[] = [];
  for (const out of outputs) {
    let failed = false;
    for (const id of ancestry(graph, out)) {
      const errors = nodeInputErrors(graph, id, info);
      if (errors.length === 0) continue;
      failed = true;
      const entry = nodeErrors[id] ??= { errors, dependent_outputs: [], class_type: String(graph[id]!.class_type) };
      entry.dependent_outputs.push(out);
    }
    if (!failed) valid.push(out);
  }
  for (const e of Object.values(nodeErrors)) for (const x of e.errors) details.push(`${x.message}: ${x.details}`);
  if (valid.length === 0) {
    return { ok: false, error: err("prompt_outputs_failed_validation", "Prompt outputs failed validation", details.join("\n")), nodeErrors };
  }
  // As in ComfyUI, a prompt with at least one valid output is accepted (200) with the others' node_errors.
  return { ok: true, outputs: valid, nodeErrors };
}

function nodeInputErrors(graph: Prompt, id: string, info: Record<string, NodeInfo>): ErrorItem[] {
  const node = graph[id]!;
  const cls = info[String(node.class_type)]!;
  const inputs = node.inputs ?? {};
  const errors: ErrorItem[] = [];
  for (const [name, spec] of Object.entries(cls.input?.required ?? {})) {
    const value = inputs[name];
    if (value === undefined) {
      errors.push(err("required_input_missing", "Required input is missing", name, { input_name: name }));
    } else if (isLink(value) && !graph[String(value[0])]) {
      errors.push(err("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", name, { input_name: name, received_value: value }));
    } else if (MODEL_INPUTS[String(node.class_type)]?.[0] === name && Array.isArray(spec[0]) && !isLink(value) && !spec[0].includes(String(value))) {
      errors.push(err("value_not_in_list", "Value not in list", `${name}: '${String(value)}' not in ${JSON.stringify(spec[0])}`,
        { input_name: name, input_config: spec, received_value: value }));
    }
  }
  for (const [name, value] of Object.entries(inputs)) {
    if (isLink(value) && !graph[String(value[0])] && !errors.some((e) => e.details === name)) {
      errors.push(err("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", name, { input_name: name, received_value: value }));
    }
  }
  return errors;
}

/** The nodes an output needs, dependencies first (depth-first, as ComfyUI's execution list stages them). */
function ancestry(graph: Prompt, out: string, seen = new Set<string>(), order: string[] = []): string[] {
  if (seen.has(out) || !graph[out]) return order;
  seen.add(out);
  for (const v of Object.values(graph[out]!.inputs ?? {})) if (isLink(v)) ancestry(graph, String(v[0]), seen, order);
  order.push(out);
  return order;
}

// ---- the server ----
interface QueueItem { number: number; id: string; prompt: Prompt; extra: Record<string, unknown>; outputs: string[]; clientId: string | null }
interface HistoryEntry { prompt: unknown[]; outputs: Record<string, unknown>; status: { status_str: string; completed: boolean; messages: [string, unknown][] }; meta: Record<string, unknown> }
interface Image { w: number; h: number; source: string }
interface StoredFile { bytes: Buffer }
interface RunState {
  item: QueueItem; messages: [string, unknown][]; outputs: Record<string, unknown>; meta: Record<string, unknown>;
  values: Map<string, Image>; executed: string[]; status: "success" | "error";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TEXT = "text/plain";
const escapes = (subfolder: string) => subfolder.startsWith("/") || subfolder.split(/[\\/]/).includes("..");
const FOLDERS = ["input", "output", "temp"];

function reply(res: ServerResponse, code: number, body: unknown, type = "application/json"): void {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  res.writeHead(code, { "content-type": type, "content-length": bytes.length });
  res.end(bytes);
}
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts);
}
// ComfyUI reads bodies with request.json() whatever the Content-Type; a malformed one is a 500 there too.
async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString("utf8");
  return text.trim() ? (JSON.parse(text) as Record<string, unknown>) : {};
}
const describeNode = (name: string, i: NodeInfo) => ({
  input: i.input, input_order: { required: Object.keys(i.input.required ?? {}), optional: Object.keys(i.input.optional ?? {}) },
  output: i.output, output_is_list: i.output.map(() => false), output_name: i.output, name, display_name: name,
  description: "", python_module: "nodes", category: i.category ?? "stand-in", output_node: i.output_node,
});

class Standin {
  readonly models: Record<string, string[]>;
  readonly files = new Map<string, StoredFile>(); // key: `${type}/${subfolder}/${name}`
  readonly pending: QueueItem[] = [];
  running: QueueItem | null = null;
  interruptRequested = false;
  readonly history = new Map<string, HistoryEntry>();
  readonly accepted: string[] = [];
  readonly interruptTargets: (string | null)[] = [];
  interrupts = 0; counter = 0; saved = 0; crashed = false; closed = false;
  readonly clients = new Map<string, WsSocket>();
  readonly sockets = new Set<Socket>();
  readonly wss = new ws.Server({ noServer: true });
  readonly server: Server;

  constructor(readonly options: StandinOptions) {
    this.models = { ...DEFAULT_MODELS, ...options.models };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => reply(res, 500, { error: String(e) }));
    });
    this.server.on("connection", (s) => { this.sockets.add(s); s.on("close", () => this.sockets.delete(s)); });
    this.server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
  }

  get stopped(): boolean { return this.crashed || this.closed; }
  inputNames(): string[] {
    return [...this.files.keys()].filter((k) => k.startsWith("input/")).map((k) => k.split("/").slice(2).join("/"));
  }
  objectInfo(): Record<string, NodeInfo> {
    const all: Record<string, NodeInfo> = builtinInfo(this.models, this.inputNames());
    for (const [name, extra] of Object.entries(this.options.objectInfo ?? {})) {
      const base: NodeInfo = all[name] ?? { input: { required: {} }, output: [], output_node: false };
      all[name] = { ...base, ...extra };
    }
    return all;
  }
  send(type: string, data: unknown, to: string | null): void {
    const frame = JSON.stringify({ type, data });
    const targets = to === null ? [...this.clients.values()] : [this.clients.get(to)];
    for (const c of targets) if (c && c.readyState === 1) c.send(frame);
  }
  /** A sampler's preview as ComfyUI sends it (server.py send_image): binary event 1, format 2 (PNG), the image. */
  sendPreview(png: Buffer, to: string | null): void {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(1, 0);
    head.writeUInt32BE(2, 4);
    const frame = Buffer.concat([head, png]);
    const targets = to === null ? [...this.clients.values()] : [this.clients.get(to)];
    for (const c of targets) if (c && c.readyState === 1) c.send(frame);
  }
  queueRemaining(): number { return this.pending.length + (this.running ? 1 : 0); }
  // ComfyUI's PromptQueue.put/task_done call queue_updated(), which broadcasts this status.
  broadcastStatus(): void { this.send("status", { status: { exec_info: { queue_remaining: this.queueRemaining() } } }, null); }

  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname !== "/ws" && url.pathname !== "/api/ws") { socket.destroy(); return; }
    this.wss.handleUpgrade(req, socket, head, (client) => {
      const sid = url.searchParams.get("clientId") || randomUUID().replace(/-/g, "");
      this.clients.get(sid)?.close(); // a reconnecting clientId replaces its old socket, as in ComfyUI
      this.clients.set(sid, client);
      client.on("close", () => { if (this.clients.get(sid) === client) this.clients.delete(sid); });
      client.send(JSON.stringify({ type: "status", data: { status: { exec_info: { queue_remaining: this.queueRemaining() } }, sid } }));
    });
  }

  async pump(): Promise<void> {
    while (!this.running && this.pending.length && !this.stopped) {
      this.pending.sort((a, b) => a.number - b.number); // ComfyUI's queue is a min-heap on number
      this.running = this.pending.shift()!;
      this.interruptRequested = false;
      await this.execute(this.running);
    }
  }

  async execute(item: QueueItem): Promise<void> {
    const run: RunState = { item, messages: [], outputs: {}, meta: {}, values: new Map(), executed: [], status: "success" };
    this.addMessage(run, "execution_start", { prompt_id: item.id });
    this.options.onPromptStart?.(item.id);
    if (this.stopped) return;
    this.addMessage(run, "execution_cached", { nodes: [], prompt_id: item.id });
    const order: string[] = [];
    const seen = new Set<string>();
    for (const out of item.outputs) ancestry(item.prompt, out, seen, order);
    for (const id of order) {
      const step = await this.executeNode(run, id);
      if (step === "stopped") return;
      if (step === "ended") break;
    }
    // ComfyUI's order: execution_success is sent by the executor, BEFORE main.py's prompt_worker calls
    // task_done, which writes the history entry (and broadcasts status); only then comes the final
    // `executing` with node null. Clients that fetch history on execution_success may find nothing;
    // clients that wait for `executing: null` always find the entry.
    if (run.status === "success") this.addMessage(run, "execution_success", { prompt_id: item.id });
    await sleep(this.options.historyLagMs ?? 50);
    if (this.stopped) return;
    this.history.set(item.id, {
      prompt: [item.number, item.id, item.prompt, item.extra, item.outputs], outputs: run.outputs,
      status: { status_str: run.status, completed: run.status === "success", messages: run.messages }, meta: run.meta,
    });
    this.running = null;
    this.broadcastStatus();
    if (item.clientId !== null) this.send("executing", { node: null, prompt_id: item.id }, item.clientId);
  }

  // PromptExecutor.add_message: execution_* events carry a timestamp and are kept for history;
  // they go to the prompt's client only, except execution_interrupted, which goes to everyone.
  addMessage(run: RunState, type: string, data: Record<string, unknown>, broadcast = false): void {
    const d = { ...data, timestamp: Date.now() };
    run.messages.push([type, d]);
    if (broadcast) this.send(type, d, null);
    else if (run.item.clientId !== null) this.send(type, d, run.item.clientId);
  }

  /** One node: `executing`, its progress, then `executed` or the error that ends the prompt. */
  async executeNode(run: RunState, id: string): Promise<"next" | "ended" | "stopped"> {
    const { item } = run;
    const to = item.clientId;
    const node = item.prompt[id]!;
    const classType = String(node.class_type);
    // ComfyUI raises InterruptProcessingException before the next node or at a sampler's next step.
    const interrupted = () => {
      this.addMessage(run, "execution_interrupted", { prompt_id: item.id, node_id: id, node_type: classType, executed: [...run.executed] }, true);
      run.status = "error";
      return "ended" as const;
    };
    if (this.stopped) return "stopped";
    if (this.interruptRequested) return interrupted();
    if (to !== null) this.send("executing", { node: id, display_node: id, prompt_id: item.id }, to);
    const failure = this.runNode(item, id, classType, run.values);
    const steps = SAMPLERS.has(classType) ? Math.max(1, Number(node.inputs?.steps) || 20) : 0;
    const marks = steps ? [...new Set([0.25, 0.5, 0.75, 1].map((f) => Math.max(1, Math.round(steps * f))))] : [];
    for (const value of marks) {
      await sleep((this.options.nodeDelayMs ?? 0) / marks.length);
      if (this.stopped) return "stopped";
      if (this.interruptRequested) return interrupted();
      this.send("progress", { value, max: steps, prompt_id: item.id, node: id }, to); // broadcast when no client_id
      this.sendPreview(makePng(8, 8, `preview ${id} ${value}/${steps}`), to);
    }
    if (!marks.length) await sleep(this.options.nodeDelayMs ?? 0);
    if (this.stopped) return "stopped";
    if (failure) {
      this.addMessage(run, "execution_error", {
        prompt_id: item.id, node_id: id, node_type: classType, executed: [...run.executed],
        exception_message: failure.message, exception_type: failure.type,
        traceback: ["Traceback (most recent call last):\n", `  File "execution.py", line 1, in execute\n`, `${failure.type}: ${failure.message}\n`],
        current_inputs: {}, current_outputs: {},
      });
      run.status = "error";
      return "ended";
    }
    run.executed.push(id);
    const ui = this.saveOutput(id, classType, node.inputs ?? {}, run.values);
    if (ui) {
      run.outputs[id] = ui;
      run.meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
      if (to !== null) this.send("executed", { node: id, display_node: id, output: ui, prompt_id: item.id }, to);
    }
    return "next";
  }

  /** What a node computes: image sizes flow through the graph; failures are raised here. */
  runNode(item: QueueItem, id: string, classType: string, values: Map<string, Image>): { type: string; message: string } | null {
    const inputs = item.prompt[id]!.inputs ?? {};
    const fail = this.options.failNode;
    if (fail?.class_type === classType) {
      // ComfyUI appends these tips to an out-of-memory error's message (execution.py, OOM_EXCEPTION).
      const tips = /OutOfMemory/.test(fail.exception_type)
        ? "\nThis error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number." : "";
      return { type: fail.exception_type, message: fail.message + tips };
    }
    const upstream = Object.values(inputs).filter(isLink).map((l) => values.get(String(l[0]))).find((v) => v);
    let value: Image | undefined = upstream;
    if (classType === "EmptyLatentImage" || classType === "EmptySD3LatentImage") {
      value = { w: Number(inputs.width) || 512, h: Number(inputs.height) || 512, source: `latent:${id}` };
    } else if (classType === "LoadImage") {
      // Real ComfyUI rejects a missing file at validation (LoadImage.VALIDATE_INPUTS); the stand-in
      // raises at run time so that a file lost between upload and execution can be tested.
      const file = this.files.get(`input//${String(inputs.image)}`);
      if (!file) return { type: "FileNotFoundError", message: `[Errno 2] No such file or directory: '${String(inputs.image)}'` };
      const png = pngInfo(file.bytes);
      value = { w: png?.width ?? 8, h: png?.height ?? 8, source: `input:${String(inputs.image)}` };
    } else if (classType === "ImageScaleBy" && upstream) {
      const s = Number(inputs.scale_by) || 1;
      value = { ...upstream, w: Math.max(1, Math.round(upstream.w * s)), h: Math.max(1, Math.round(upstream.h * s)) };
    } else if (classType === "ImageUpscaleWithModel" && upstream) {
      value = { ...upstream, w: upstream.w * 4, h: upstream.h * 4 };
    }
    if (value) values.set(id, value);
    return null;
  }

  /** SaveImage (type output) and PreviewImage (type temp) write a PNG and return ComfyUI's `ui` dict. */
  saveOutput(id: string, classType: string, inputs: Record<string, unknown>, values: Map<string, Image>) {
    if (classType !== "SaveImage" && classType !== "PreviewImage") return null;
    const link = inputs.images;
    const img = (isLink(link) && values.get(String(link[0]))) || { w: 64, h: 64, source: "none" };
    const type = classType === "SaveImage" ? "output" : "temp";
    const prefix = String(inputs.filename_prefix ?? "ComfyUI").replace(/[^\w.-]/g, "_");
    const filename = `${prefix}_${String(++this.saved).padStart(5, "0")}_.png`;
    const w = Math.min(img.w, 4096), h = Math.min(img.h, 4096);
    this.files.set(`${type}//${filename}`, { bytes: makePng(w, h, `node=${id};source=${img.source};size=${w}x${h}`) });
    return { images: [{ filename, subfolder: "", type }] };
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const path = url.pathname.startsWith("/api/") ? url.pathname.slice(4) : url.pathname; // every route is also under /api
    const route = `${req.method ?? "GET"} ${path}`;
    const tail = (prefix: string) => decodeURIComponent(path.slice(prefix.length));
    if (route === "POST /prompt") return this.postPrompt(req, res);
    if (route === "GET /prompt") return reply(res, 200, { exec_info: { queue_remaining: this.queueRemaining() } });
    if (route === "GET /queue") {
      const row = (q: QueueItem) => [q.number, q.id, q.prompt, q.extra, q.outputs];
      return reply(res, 200, { queue_running: this.running ? [row(this.running)] : [], queue_pending: this.pending.map(row) });
    }
    if (route === "POST /interrupt") {
      const body = await readJson(req).catch(() => ({}) as Record<string, unknown>);
      const target = typeof body.prompt_id === "string" ? body.prompt_id : null;
      this.interrupts++;
      this.interruptTargets.push(target);
      // With a prompt_id, only that prompt is interrupted, and only if it is the one running.
      if (this.running && (target === null || target === this.running.id)) this.interruptRequested = true;
      return reply(res, 200, "", TEXT);
    }
    if (route === "GET /history") return reply(res, 200, Object.fromEntries(this.history));
    if (route.startsWith("GET /history/")) {
      const entry = this.history.get(tail("/history/"));
      return reply(res, 200, entry ? { [tail("/history/")]: entry } : {});
    }
    if (route === "GET /view") return this.view(url, res);
    if (route === "POST /upload/image") return this.upload(req, res);
    if (route === "GET /object_info") {
      return reply(res, 200, Object.fromEntries(Object.entries(this.objectInfo()).map(([k, v]) => [k, describeNode(k, v)])));
    }
    if (route.startsWith("GET /object_info/")) {
      const info = this.objectInfo()[tail("/object_info/")];
      return reply(res, 200, info ? { [tail("/object_info/")]: describeNode(tail("/object_info/"), info) } : {});
    }
    if (route === "GET /models") return reply(res, 200, Object.keys(this.models));
    if (route.startsWith("GET /models/")) {
      const list = this.models[tail("/models/")];
      return list ? reply(res, 200, list) : reply(res, 404, "404: Not Found", TEXT);
    }
    if (route === "GET /system_stats") {
      const gib = 1024 ** 3;
      return reply(res, 200, {
        system: { os: "linux", ram_total: 64 * gib, ram_free: 48 * gib, comfyui_version: "0.0.0-standin", python_version: "3.12", pytorch_version: "2.5", embedded_python: false, argv: ["main.py"] },
        devices: [{ name: "cuda:0 stand-in", type: "cuda", index: 0, vram_total: 24 * gib, vram_free: 20 * gib, torch_vram_total: 0, torch_vram_free: 0 }],
      });
    }
    return reply(res, 404, "404: Not Found", TEXT);
  }

  async postPrompt(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    const pid = body.prompt_id ?? randomUUID();
    if (typeof pid !== "string" || !UUID.test(pid)) {
      return reply(res, 400, { error: err("invalid_prompt_id", "Invalid prompt_id: must be a canonical UUID", String(pid)), node_errors: {} });
    }
    const v = validatePrompt(body.prompt, this.objectInfo());
    if (!v.ok) return reply(res, 400, { error: v.error, node_errors: v.nodeErrors });
    const number = typeof body.number === "number" ? body.number : body.front ? -this.counter : this.counter;
    this.counter++;
    const clientId = typeof body.client_id === "string" ? body.client_id : null;
    const extra = { ...(body.extra_data as Record<string, unknown> | undefined), ...(clientId ? { client_id: clientId } : {}), create_time: Date.now() };
    this.pending.push({ number, id: pid, prompt: body.prompt as Prompt, extra, outputs: v.outputs, clientId });
    this.accepted.push(pid);
    this.broadcastStatus();
    reply(res, 200, { prompt_id: pid, number, node_errors: v.nodeErrors });
    void this.pump();
  }

  view(url: URL, res: ServerResponse): void {
    const filename = url.searchParams.get("filename") ?? "";
    const subfolder = url.searchParams.get("subfolder") ?? "";
    const type = url.searchParams.get("type") || "output";
    // server.py view_image: 400 for an absolute or ".." filename, 403 for a subfolder escaping its folder.
    if (!filename || filename.startsWith("/") || filename.includes("..") || filename.includes("\\")) return reply(res, 400, "400: Bad Request", TEXT);
    if (escapes(subfolder)) return reply(res, 403, "403: Forbidden", TEXT);
    if (!FOLDERS.includes(type)) return reply(res, 400, "400: Bad Request", TEXT);
    const file = this.files.get(`${type}/${subfolder}/${filename}`);
    if (!file) return reply(res, 404, "404: Not Found", TEXT);
    res.setHeader("content-disposition", `filename="${filename}"`);
    reply(res, 200, file.bytes, filename.endsWith(".png") ? "image/png" : "application/octet-stream");
  }

  async upload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const boundary = /boundary="?([^";]+)"?/.exec(String(req.headers["content-type"] ?? ""))?.[1];
    if (!boundary) return reply(res, 400, "400: Bad Request", TEXT);
    const parts = parseMultipart(await readBody(req), boundary);
    const image = parts.find((p) => p.name === "image" && p.filename);
    const field = (n: string) => parts.find((p) => p.name === n)?.data.toString("utf8") ?? "";
    const type = field("type") || "input";
    const subfolder = field("subfolder");
    const overwrite = ["true", "1"].includes(field("overwrite").toLowerCase());
    let name = image?.filename?.split(/[\\/]/).pop() ?? "";
    if (!image || !FOLDERS.includes(type) || escapes(subfolder) || !name || name.startsWith(".")) return reply(res, 400, "400: Bad Request", TEXT);
    // ComfyUI keeps an existing file of the same name unless overwrite is set or the bytes are identical: "name (1).ext".
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let i = 1; !overwrite; i++) {
      const existing = this.files.get(`${type}/${subfolder}/${name}`);
      if (!existing || existing.bytes.equals(image.data)) break;
      name = `${stem} (${i})${ext}`;
    }
    this.files.set(`${type}/${subfolder}/${name}`, { bytes: image.data });
    reply(res, 200, { name, subfolder, type });
  }

  listen(port: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => { this.server.off("error", reject); resolve(); });
    });
  }
  dropEverything(): void {
    for (const c of this.clients.values()) c.terminate();
    for (const s of this.sockets) s.destroy();
    this.wss.close();
  }
  crash(): void {
    if (this.stopped) return;
    this.crashed = true;
    this.dropEverything();
    this.server.close();
  }
}

/** Start a stand-in; with `startDelayMs` it resolves at once and `ready` says when it listens. */
export async function startComfyStandin(options: StandinOptions = {}): Promise<ComfyStandin> {
  const s = new Standin(options);
  // A slow start must refuse connections, so the port is chosen now and listened on only later.
  let port = options.port ?? 0;
  if (port === 0) {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
  }
  let crashTimer: NodeJS.Timeout | undefined;
  const ready = sleep(options.startDelayMs ?? 0).then(async () => {
    if (s.closed) return;
    await s.listen(port);
    if (options.crashAfterMs !== undefined) crashTimer = setTimeout(() => s.crash(), options.crashAfterMs);
  });
  if (!options.startDelayMs) await ready;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    ready,
    prompts: () => [...s.accepted],
    interrupts: () => s.interrupts,
    interruptTargets: () => [...s.interruptTargets],
    uploads: () => s.inputNames(),
    crash: () => s.crash(),
    close: async () => {
      if (s.closed) return;
      await ready.catch(() => undefined);
      s.closed = true;
      clearTimeout(crashTimer);
      s.dropEverything();
      if (s.server.listening) await new Promise<void>((r) => s.server.close(() => r()));
    },
  };
}

interface Part { name: string; filename?: string; data: Buffer }
/** Just enough multipart/form-data for `/upload/image`: named fields and files. */
function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = body.indexOf(delim);
  while (at !== -1) {
    const start = at + delim.length;
    if (body.subarray(start, start + 2).toString() === "--") break;
    const next = body.indexOf(delim, start);
    if (next === -1) break;
    const section = body.subarray(start + 2, next - 2); // skip the CRLF after the delimiter and before the next
    const split = section.indexOf("\r\n\r\n");
    if (split !== -1) {
      const head = section.subarray(0, split).toString("utf8");
      const name = /[;\s]name="([^"]*)"/.exec(head)?.[1];
      const filename = /filename="([^"]*)"/.exec(head)?.[1];
      if (name !== undefined) parts.push({ name, filename, data: section.subarray(split + 4) });
    }
    at = next;
  }
  return parts;
}
