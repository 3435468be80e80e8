/**
 * The `comfyui` executor: runs a ComfyUI stage (a GPU-affine segment of a prompt, or the whole prompt)
 * as an API prompt on the ComfyUI server pinned to the stage's GPU, and commits what it wrote.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import type { Logger } from "pino";
import { ValidationError, type FieldIssue } from "../../../config/errors.ts";
import { buildSegmentPrompt, handoffFilesOf, type SegmentPrompt } from "../../../graph/comfyui-segment-prompt.ts";
import { artifactNameProblem } from "../output-names.ts";
import type { AttemptSpec, Executor, RunningAttempt } from "../types.ts";
import { RUN_INPUTS_FILE, attemptPaths, prepareWorkspace, type AttemptPaths, type InputMode } from "../workspace.ts";
import { ComfyAttempt, endedAtSetup } from "./attempt.ts";
import type { ComfyRelay } from "./contract.ts";
import { Residency } from "./residency.ts";
import type { ComfyServer, ComfyServerPool } from "./server-pool.ts";

export interface ComfyUiExecutorOptions {
  /** Where workspaces go (the process executor's scratch): outputs are committed from there. */
  readonly dataDir: string;
  readonly pool: ComfyServerPool;
  /** Where live events and previews of every attempt go (the ComfyUI-compatible API listens). */
  readonly relay: ComfyRelay;
  /** Seconds a prompt may run (ComfyUI stages declare none); default 3600. */
  readonly defaultTimeoutS?: number;
  readonly inputMode?: InputMode;
  /** After the server or its socket is lost mid-prompt: how often, and how far apart, its history is asked for the prompt (default 4 × 500 ms). */
  readonly lostPolls?: number;
  readonly lostPollMs?: number;
  readonly logger?: Logger;
}

const DEFAULT_TIMEOUT_S = 3600;

/** The names an attempt's handoff files get on a server: unique per attempt, so runs never overwrite each other's. */
export function uploadPrefix(attemptId: string): string {
  return `gf-${createHash("sha256").update(attemptId).digest("hex").slice(0, 12)}-`;
}

/** What a prepared attempt sends and uploads. */
export interface PreparedPrompt {
  readonly segment: SegmentPrompt;
  /** Files to upload before the prompt: server name → bytes or a file path. */
  readonly uploads: ReadonlyArray<{ readonly name: string; readonly path?: string; readonly bytes?: Buffer }>;
}

export class ComfyUiExecutor implements Executor {
  readonly kind = "comfyui" as const;
  readonly residency = new Residency();

  constructor(readonly options: ComfyUiExecutorOptions) {
    const issues: FieldIssue[] = [];
    if (!isAbsolute(options.dataDir)) issues.push({ field: "dataDir", message: `must be an absolute path (got '${options.dataDir}')` });
    for (const field of ["defaultTimeoutS", "lostPolls", "lostPollMs"] as const) {
      const v = options[field];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) issues.push({ field, message: `must be a number above 0 (got ${v})` });
    }
    if (issues.length > 0) throw new ValidationError("comfyui executor options", issues);
  }

  timeoutS(attempt: AttemptSpec): number {
    return attempt.stage.run?.timeoutSeconds ?? this.options.defaultTimeoutS ?? DEFAULT_TIMEOUT_S;
  }

  async start(attempt: AttemptSpec): Promise<RunningAttempt> {
    const nodes = attempt.comfy?.nodes;
    const stageNodes = attempt.stage.comfyNodes;
    if (nodes === undefined || stageNodes === undefined || stageNodes.length === 0) {
      return endedAtSetup(attempt, "the stage is not a ComfyUI stage with its prompt's nodes: only a ComfyUI workflow's stages run on ComfyUI servers");
    }
    const server = this.serverOf(attempt);
    if (server === undefined) {
      const gpu = attempt.gpus[0]?.id ?? "(none)";
      return endedAtSetup(attempt, `no ComfyUI server serves gpu ${gpu}: list it in comfyui.servers, or start servers with comfyui.command`);
    }
    let paths: AttemptPaths;
    try {
      paths = attemptPaths(this.options.dataDir, attempt.runId, attempt.stageId, attempt.number);
      await prepareWorkspace(paths, attempt.inputs, this.options.inputMode ?? "copy");
    } catch (err) {
      return endedAtSetup(attempt, `could not prepare the workspace: ${(err as Error).message}`);
    }
    let prepared: PreparedPrompt;
    try {
      prepared = await this.prepare(attempt, paths, nodes, stageNodes);
    } catch (err) {
      return endedAtSetup(attempt, (err as Error).message, paths.workspace);
    }
    const running = new ComfyAttempt(attempt, paths, server, prepared, this);
    running.begin();
    return running;
  }

  /** A GPU stage's server is its GPU's; a CPU-only segment runs on any ready server. */
  private serverOf(attempt: AttemptSpec): ComfyServer | undefined {
    const gpu = attempt.gpus[0];
    if (gpu !== undefined) return this.options.pool.serverFor(gpu);
    const all = [...this.options.pool.servers.values()];
    return all.find((s) => s.ready) ?? all[0];
  }

  /** The stage's prompt, with the handoff files it reads and the client's uploads it names. */
  private async prepare(attempt: AttemptSpec, paths: AttemptPaths, nodes: NonNullable<AttemptSpec["comfy"]>["nodes"], stageNodes: readonly string[]): Promise<PreparedPrompt> {
    const prefix = uploadPrefix(attempt.attemptId);
    // Handoff files of the stages it needs, as their attempts committed them (named as SaveImage wrote them).
    const local = new Map<string, string>();
    for (const input of attempt.inputs) {
      if (!("stageId" in input)) continue;
      const dir = join(paths.inputs, input.stageId);
      for (const name of await readdir(dir).catch(() => [] as string[])) if (name.startsWith("gf-handoff-")) local.set(name, join(dir, name));
    }
    const names = [...local.keys()];
    let segment: SegmentPrompt;
    try {
      segment = buildSegmentPrompt(nodes, stageNodes, (from, output) => {
        const files = handoffFilesOf(names, from, output);
        return files.length === 0 ? undefined : files.map((f) => `${prefix}${f}`);
      });
    } catch (err) {
      throw new Error(`could not build the stage's prompt: ${(err as Error).message}`);
    }
    const uploads: Array<{ name: string; path?: string; bytes?: Buffer }> = [];
    for (const input of segment.inputs) for (const file of input.files) uploads.push({ name: file, path: local.get(file.slice(prefix.length))! });
    for (const [name, bytes] of Object.entries(await this.clientUploads(attempt, paths))) uploads.push({ name, bytes });
    return { segment, uploads };
  }

  /** `comfyui.uploads` of the run's inputs: images a client uploaded, which the prompt's LoadImage nodes name. */
  private async clientUploads(attempt: AttemptSpec, paths: AttemptPaths): Promise<Record<string, Buffer>> {
    let inputs: unknown = attempt.runInputsValue;
    if (inputs === undefined && attempt.inputs.some((i) => "runInputs" in i)) {
      inputs = JSON.parse(await readFile(join(paths.inputs, RUN_INPUTS_FILE), "utf8"));
    }
    const uploads = (inputs as { comfyui?: { uploads?: unknown } } | undefined)?.comfyui?.uploads;
    if (uploads === undefined) return {};
    if (uploads === null || typeof uploads !== "object" || Array.isArray(uploads)) {
      throw new Error("the run's inputs.comfyui.uploads must be an object of file names to base64 contents");
    }
    const out: Record<string, Buffer> = {};
    for (const [name, value] of Object.entries(uploads)) {
      const problem = artifactNameProblem(name);
      if (problem) throw new Error(`inputs.comfyui.uploads['${name}']: the name ${problem}`);
      if (typeof value !== "string") throw new Error(`inputs.comfyui.uploads['${name}'] must be the file's contents in base64`);
      out[name] = Buffer.from(value, "base64");
    }
    return out;
  }
}
