/**
 * What the ComfyUI executor hands to the rest of the agent: the manifest each attempt commits beside
 * its images (the history of a prompt is built from it), the relay of live events (progress, the node
 * executing, previews) to `/ws` clients, and the introspection of the real servers (`/object_info`).
 */
import { EventEmitter } from "node:events";

/** The artifact every ComfyUI attempt commits: its nodes' UI outputs, each file naming the artifact that holds it. */
export const COMFY_OUTPUTS_ARTIFACT = "comfyui-outputs.json";

/** A file a node's UI output names, as ComfyUI names it, plus the artifact of the attempt that holds its bytes. */
export interface ComfyOutputFile {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: "output" | "temp" | "input";
  readonly artifact: string;
  readonly [extra: string]: unknown;
}

export interface ComfyOutputsManifest {
  readonly version: 1;
  /**
   * Each node's `ui` dict as the server returned it in history (`images`, `gifs`, `audio`, `text`, …),
   * every file entry (an object with filename, subfolder and type) given its `artifact`. Only the
   * prompt's own nodes: the nodes the executor adds to hand images between GPUs are left out.
   */
  readonly nodes: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** The prompt's own nodes the server executed, in order, and those it reused from its cache. */
  readonly executed: readonly string[];
  readonly cached: readonly string[];
}

/** A live event of an attempt, as its server sent it; `prompt_id` is the API layer's to set. */
export interface ComfyRelayMessage {
  readonly runId: string;
  readonly stageId: string;
  readonly attemptId: string;
  readonly type: "execution_cached" | "executing" | "progress" | "progress_state" | "executed";
  readonly data: Readonly<Record<string, unknown>>;
}

/** A binary frame of an attempt (a preview): the 4-byte event type, and what followed it. */
export interface ComfyRelayPreview {
  readonly runId: string;
  readonly stageId: string;
  readonly eventType: number;
  readonly payload: Buffer;
}

/**
 * Live events of ComfyUI attempts in this process. Only what the store does not keep passes here:
 * the store's events remain the record (a client on another replica still sees stages start and end).
 */
export class ComfyRelay extends EventEmitter<{ message: [ComfyRelayMessage]; preview: [ComfyRelayPreview] }> {
  constructor() {
    super();
    this.setMaxListeners(0);
  }

  message(m: ComfyRelayMessage): void {
    this.emit("message", m);
  }

  preview(p: ComfyRelayPreview): void {
    this.emit("preview", p);
  }
}

/** What the fabric's real ComfyUI servers offer, for `/object_info`, `/models` and the checks before a prompt is accepted. */
export interface ComfyIntrospection {
  /** Node classes every server of this process knows (the intersection), or null while none has answered. */
  objectInfo(): Promise<Readonly<Record<string, unknown>> | null>;
  /** Model files by folder (`checkpoints`, `loras`, …) that every server has, or null while none has answered. */
  models(): Promise<Readonly<Record<string, readonly string[]>> | null>;
}
