/**
 * What bench/comfyui.ts needs beside its phases: the shared prompts as API prompts, the stand-in
 * servers' inventory built from them, a keep-alive JSON POST, and WebSocket clients that note when
 * each ComfyUI message arrives.
 */
import { readdirSync, readFileSync } from "node:fs";
import { request, type Agent } from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import WebSocket from "ws";

export type ApiPrompt = Record<string, { class_type: string; inputs?: Record<string, unknown> }>;

export interface PromptFile {
  readonly file: string;
  readonly prompt: ApiPrompt;
}

/** Every `.json` prompt of a folder in name order, as POST /prompt takes it (a `{prompt: …}` wrapper is unwrapped). */
export function loadPrompts(dir: string): PromptFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const doc = JSON.parse(readFileSync(join(dir, file), "utf8")) as Record<string, unknown>;
      const wrapped = typeof doc.prompt === "object" && doc.prompt !== null && !("class_type" in doc.prompt);
      return { file, prompt: (wrapped ? doc.prompt : doc) as ApiPrompt };
    });
}

// The classes the executor adds when it hands an IMAGE or MASK from one GPU to the next.
const HANDOFF_CLASSES = ["SaveImage", "LoadImage", "MaskToImage", "ImageToMask", "ImageBatch"];

/** The model folder a loader input names files of, as ComfyUI's folder_paths calls it. */
function folderOf(classType: string, input: string): string | undefined {
  if (input === "ckpt_name") return "checkpoints";
  if (input === "unet_name") return "diffusion_models";
  if (input === "vae_name") return "vae";
  if (input === "lora_name") return "loras";
  if (input === "control_net_name") return "controlnet";
  if (input === "style_model_name") return "style_models";
  if (/^clip_name\d*$/.test(input)) return classType === "CLIPVisionLoader" ? "clip_vision" : "text_encoders";
  if (input === "model_name" && /upscale/i.test(classType)) return "upscale_models";
  return undefined;
}

/**
 * What a stand-in must offer so that every prompt passes our checks and its own: each class type of
 * the prompts (and of the handoff), with no input specs (so any inputs are accepted: the stand-in
 * cannot know custom nodes' specs), the Save and Preview classes as output nodes; and the model files
 * the prompts' loaders name, by folder.
 */
export function standinInventory(prompts: readonly PromptFile[]): {
  objectInfo: Record<string, { input: { required: Record<string, never> }; output_node: boolean }>;
  models: Record<string, string[]>;
} {
  const objectInfo: Record<string, { input: { required: Record<string, never> }; output_node: boolean }> = {};
  const models: Record<string, Set<string>> = {};
  const classes = new Set(HANDOFF_CLASSES);
  for (const { prompt } of prompts) {
    for (const node of Object.values(prompt)) {
      classes.add(node.class_type);
      for (const [input, value] of Object.entries(node.inputs ?? {})) {
        const folder = folderOf(node.class_type, input);
        if (folder !== undefined && typeof value === "string" && value !== "") (models[folder] ??= new Set()).add(value);
      }
    }
  }
  for (const c of classes) objectInfo[c] = { input: { required: {} }, output_node: /^(Save|Preview)/.test(c) };
  return { objectInfo, models: Object.fromEntries(Object.entries(models).map(([k, v]) => [k, [...v].sort()])) };
}

/** POST a JSON body over a keep-alive connection (node:http: a lighter load generator than fetch). */
export function postJson(url: string, headers: Record<string, string>, body: unknown, agent: Agent): Promise<{ status: number; body: any }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = raw;
        try {
          parsed = JSON.parse(raw);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}

export interface ComfyMessage {
  readonly type: string;
  readonly data: { prompt_id?: string; node?: string | null; [k: string]: unknown };
}

/** Opens a WebSocket and resolves once it is open; `onMessage` gets each text message with its arrival time. */
export function openWs(url: string, headers: Record<string, string>, onMessage: (m: ComfyMessage, at: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.on("message", (data, binary) => {
      const at = performance.now();
      if (!binary) onMessage(JSON.parse(String(data)) as ComfyMessage, at);
    });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/**
 * Follows prompts on one client's socket by prompt id: when `execution_start` and the final
 * `executing` (node null) arrived, and whether `execution_error` came; `final(id)` waits for the end.
 */
export class PromptFollower {
  readonly started = new Map<string, number>();
  readonly ended = new Map<string, number>();
  readonly failed = new Map<string, string>();
  private readonly waiters = new Map<string, () => void>();

  onMessage = (m: ComfyMessage, at: number): void => {
    const id = m.data?.prompt_id;
    if (typeof id !== "string") return;
    if (m.type === "execution_start" && !this.started.has(id)) this.started.set(id, at);
    if (m.type === "execution_error") this.failed.set(id, `${String(m.data.node_type)}: ${String(m.data.exception_message).split("\n")[0]}`);
    if (m.type === "executing" && m.data.node === null && !this.ended.has(id)) {
      this.ended.set(id, at);
      this.waiters.get(id)?.();
      this.waiters.delete(id);
    }
  };

  final(id: string, timeoutMs: number): Promise<number> {
    const done = this.ended.get(id);
    if (done !== undefined) return Promise.resolve(done);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new Error(`prompt ${id} did not reach its final executing within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, () => {
        clearTimeout(timer);
        resolve(this.ended.get(id)!);
      });
    });
  }
}

/** Resolves once `probe` is true, checking every `everyMs`; false after `timeoutMs`. */
export async function until(probe: () => boolean, timeoutMs: number, everyMs = 2): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!probe()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}
