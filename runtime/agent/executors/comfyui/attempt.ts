/**
 * One attempt of a ComfyUI stage on its server: model checks, uploads, `/ws` opened before the prompt
 * is queued, the prompt's events followed to its final `executing` (node null), then its files fetched
 * and the manifest written. Every path ends in exactly one outcome; cancel and timeout interrupt the
 * prompt on the server.
 */
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AttemptEndReason, AttemptOutcome, AttemptSpec, CommittedArtifact, RunningAttempt } from "../types.ts";
import { commitOutputs, type AttemptPaths } from "../workspace.ts";
import { ComfyHttpError, type ComfyClient, type ComfyFrame, type ComfySocket, type HistoryEntry } from "./client.ts";
import { COMFY_OUTPUTS_ARTIFACT, type ComfyOutputsManifest } from "./contract.ts";
import { describeExecutionError, describeRefusal, relayedData, type RelayedType } from "./events.ts";
import type { ComfyUiExecutor, PreparedPrompt } from "./executor.ts";
import { missingOnServer } from "./model-check.ts";
import { fetchOutputs } from "./outputs.ts";
import { modelsOfNodes } from "./residency.ts";
import type { ComfyServer } from "./server-pool.ts";

/** setTimeout's ceiling (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
/** The history entry is written before the final `executing`; a few short retries cover a slow read. */
const HISTORY_TRIES = 10;
const HISTORY_RETRY_MS = 100;

type Ending = { reason: AttemptEndReason; message: string; peakVramMiB?: number; residentModels?: readonly string[] };

export class ComfyAttempt implements RunningAttempt {
  readonly attemptId: string;
  readonly pid = null;
  readonly workspace: string;
  readonly done: Promise<AttemptOutcome>;
  /** The prompt's id on the server (fresh for every attempt). */
  readonly promptId = randomUUID();
  private readonly clientId = randomUUID().replace(/-/g, "");
  private settle!: (o: AttemptOutcome) => void;
  private ended = false;
  private finishing = false;
  private posted = false;
  private socket: ComfySocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;
  private readonly executed: string[] = [];
  private readonly cached: string[] = [];
  private readonly own: ReadonlySet<string>;
  private committed: Promise<CommittedArtifact[]> | undefined;
  private tracedClient: { base: ComfyClient; client: ComfyClient } | undefined;

  constructor(
    private readonly attempt: AttemptSpec,
    private readonly paths: AttemptPaths,
    private readonly server: ComfyServer,
    private readonly prepared: PreparedPrompt,
    private readonly executor: ComfyUiExecutor
  ) {
    this.attemptId = attempt.attemptId;
    this.workspace = paths.workspace;
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.own = new Set(prepared.segment.ownNodes);
  }

  /** The server's client; a traced attempt's requests carry its `traceparent`. */
  private get client(): ComfyClient {
    const base = this.server.client;
    if (this.attempt.trace === undefined) return base;
    if (this.tracedClient?.base !== base) this.tracedClient = { base, client: base.traced(this.attempt.trace) };
    return this.tracedClient.client;
  }

  private get where(): string {
    return `the ComfyUI server for gpu ${this.server.gpu.id}`;
  }

  /** Starts the work in the background; `done` says how it ended. */
  begin(): void {
    const seconds = this.executor.timeoutS(this.attempt);
    this.timer = setTimeout(() => this.stop("timeout"), Math.min(seconds * 1000, MAX_TIMER_MS));
    this.run().catch((err: unknown) => this.failed(err));
  }

  cancel(): void {
    this.stop("cancelled");
  }

  commitOutputs(): Promise<CommittedArtifact[]> {
    this.committed ??= (async () => {
      const outcome = await this.done;
      if (outcome.reason !== "completed") {
        throw new Error(`attempt ${this.attempt.number} of stage '${this.attempt.stageId}' ended '${outcome.reason}': only a completed attempt's outputs are committed`);
      }
      return commitOutputs(this.paths, `stage '${this.attempt.stageId}' (attempt ${this.attempt.number})`);
    })();
    return this.committed;
  }

  private async run(): Promise<void> {
    const { server } = this;
    if (!(await server.whenReady())) {
      return this.end({ reason: "setup-failed", message: `${this.where} did not become ready within ${server.startTimeoutMs} ms${server.lastExit ? ` (${server.lastExit})` : ""}` });
    }
    if (this.ended) return;
    this.generation = server.generation;
    const prompt = this.prepared.segment.prompt;
    let info: Record<string, unknown>;
    try {
      info = await server.objectInfo();
    } catch (err) {
      return this.end({ reason: "setup-failed", message: `could not read /object_info of ${this.where}: ${(err as Error).message}` });
    }
    const missing = missingOnServer(prompt, info, this.where);
    if (missing.length > 0) return this.end({ reason: "setup-failed", message: `nothing was sent: ${missing.join("; ")}` });
    if (!Object.values(prompt).some((node) => (info[node.class_type] as { output_node?: unknown } | undefined)?.output_node === true)) {
      // A segment that feeds no output node and hands nothing on (a loader whose outputs nothing reads):
      // ComfyUI executes only outputs and what they need, so it would refuse this prompt. Nothing to run.
      const manifest: ComfyOutputsManifest = { version: 1, nodes: {}, executed: [], cached: [] };
      await writeFile(join(this.paths.outputs, COMFY_OUTPUTS_ARTIFACT), JSON.stringify(manifest), { flag: "wx" });
      return this.end({ reason: "completed", message: `not sent to ${this.where}: its nodes feed no output node, so ComfyUI would not execute them` });
    }
    for (const u of this.prepared.uploads) {
      const bytes = u.bytes ?? (await readFile(u.path!));
      const name = await this.client.uploadImage(u.name, bytes);
      if (name !== u.name) throw new Error(`${this.where} stored the upload '${u.name}' as '${name}'`);
      if (this.ended) return;
    }
    this.socket = await this.client.openSocket(this.clientId, (f) => this.onFrame(f), (why) => void this.onLost(why));
    if (this.ended) return this.socket.close();
    try {
      await this.client.queuePrompt({ prompt, prompt_id: this.promptId, client_id: this.clientId });
    } catch (err) {
      if (err instanceof ComfyHttpError && err.status === 400) {
        return this.end({ reason: "setup-failed", message: `${this.where} refused the prompt: ${describeRefusal(err.body)}` });
      }
      throw err;
    }
    this.posted = true;
    // Cancelled while the prompt was being queued: it must not run on.
    if (this.ended) this.interruptOnServer();
  }

  private onFrame(frame: ComfyFrame): void {
    if (this.ended) return;
    const base = { runId: this.attempt.runId, stageId: this.attempt.stageId };
    if (frame.kind === "binary") {
      // ComfyUI sends previews to the client of the prompt running: this socket's prompt.
      this.executor.options.relay.preview({ ...base, eventType: frame.eventType, payload: frame.payload });
      return;
    }
    const { type, data } = frame;
    if (data.prompt_id !== this.promptId) return;
    if (type === "execution_cached" && Array.isArray(data.nodes)) this.cached.push(...data.nodes.filter((n): n is string => typeof n === "string"));
    if (type === "executing") {
      if (data.node === null) return void this.complete();
      if (typeof data.node === "string" && !this.executed.includes(data.node)) this.executed.push(data.node);
    }
    const relayed = relayedData(type, data, this.own);
    if (relayed !== undefined) this.executor.options.relay.message({ ...base, attemptId: this.attemptId, type: type as RelayedType, data: relayed });
    if (type === "execution_error") this.executionError(data);
    else if (type === "execution_interrupted") this.end({ reason: "cancelled", message: `interrupted on ${this.where} at node ${String(data.node_id ?? "?")} (${String(data.node_type ?? "?")})` });
  }

  private executionError(data: Readonly<Record<string, unknown>>): void {
    const { message, oom } = describeExecutionError(data);
    if (oom) {
      // ComfyUI unloads every model after an OOM; the GPU's whole memory was not enough.
      this.executor.residency.cleared(this.server.gpu.id, this.generation);
      const memory = this.server.gpu.memoryMiB;
      this.end({ reason: "exit-code", message: `${this.where}: ${message}`, ...(memory !== undefined && { peakVramMiB: memory }), residentModels: [] });
      return;
    }
    this.end({ reason: "exit-code", message: `${this.where}: ${message}` });
  }

  /** The final `executing` came: read the history, fetch the files. */
  private async complete(): Promise<void> {
    if (this.finishing || this.ended) return;
    this.finishing = true;
    try {
      let entry: HistoryEntry | undefined;
      for (let i = 0; i < HISTORY_TRIES && entry === undefined; i++) {
        entry = await this.client.history(this.promptId);
        if (entry === undefined) await sleep(HISTORY_RETRY_MS);
      }
      if (entry === undefined) return this.end({ reason: "exit-code", message: `${this.where} finished the prompt but has no history of it` });
      await this.finishFrom(entry);
    } catch (err) {
      this.failed(err);
    }
  }

  private async finishFrom(entry: HistoryEntry): Promise<void> {
    if (this.ended) return;
    if (entry.status?.status_str === "error") {
      const error = entry.status.messages?.find(([t]) => t === "execution_error");
      if (error) return this.executionError(error[1]);
      const interrupted = entry.status.messages?.some(([t]) => t === "execution_interrupted");
      return this.end({ reason: interrupted ? "cancelled" : "exit-code", message: `${this.where} ended the prompt with an error${interrupted ? " (interrupted)" : ""}` });
    }
    const handoffNodes = new Set(this.prepared.segment.outputs.map((o) => o.saveNode));
    const fetched = await fetchOutputs(this.client, entry, this.paths.outputs, this.own, handoffNodes, { executed: this.executed, cached: this.cached });
    const missing = this.prepared.segment.outputs.filter((o) => !fetched.files.some((f) => f.startsWith(`${o.prefix}_`)));
    if (missing.length > 0) {
      return this.end({ reason: "exit-code", message: `${this.where} wrote no handoff image for ${missing.map((o) => `node ${o.node} output ${o.output}`).join(", ")}` });
    }
    const models = modelsOfNodes(this.attempt.comfy!.nodes, this.prepared.segment.ownNodes);
    this.executor.residency.loaded(this.server.gpu.id, this.generation, models);
    this.end({ reason: "completed", message: `ran on ${this.where}: ${fetched.files.length - 1} file(s) and the outputs manifest` });
  }

  /** The socket dropped mid-prompt: the server may still have finished it; its history says. */
  private async onLost(why: string): Promise<void> {
    if (this.ended || this.finishing) return;
    const pool = this.executor.options.pool;
    pool.suspect(this.server, why);
    const tries = this.executor.options.lostPolls ?? 4;
    const pause = this.executor.options.lostPollMs ?? 500;
    for (let i = 0; i < tries && !this.ended && !this.finishing; i++) {
      const entry = await this.client.history(this.promptId).catch(() => undefined);
      if (entry !== undefined && (entry.status?.completed === true || entry.status?.status_str === "error")) {
        this.finishing = true;
        return this.finishFrom(entry).catch((err: unknown) => this.failed(err));
      }
      await sleep(pause);
    }
    this.end({ reason: "exit-code", message: `${this.where} stopped: ${why}${this.server.lastExit ? ` (${this.server.lastExit})` : ""}`, residentModels: [] });
  }

  private failed(err: unknown): void {
    if (err instanceof ComfyHttpError && err.status === null) {
      this.executor.options.pool.suspect(this.server, err.message);
      this.end({ reason: "exit-code", message: `${this.where} stopped: ${err.message}`, residentModels: [] });
      return;
    }
    this.end({ reason: "exit-code", message: `the prompt could not be run on ${this.where}: ${(err as Error).message}` });
  }

  private stop(reason: "cancelled" | "timeout"): void {
    if (this.ended) return;
    const seconds = this.executor.timeoutS(this.attempt);
    this.end(reason === "cancelled" ? { reason, message: "stopped: the run was cancelled" } : { reason, message: `stopped after its timeout of ${seconds} s` });
    if (this.posted) this.interruptOnServer();
  }

  /** Interrupts the prompt if it runs, and takes it off the queue if it waits. */
  private interruptOnServer(): void {
    const client = this.client;
    void client.interrupt(this.promptId).catch(() => undefined);
    void client.deleteQueued(this.promptId).catch(() => undefined);
  }

  private end(e: Ending): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.socket?.close();
    const resident = e.residentModels ?? this.executor.residency.of(this.server.gpu.id, this.generation);
    this.settle({
      exitCode: null,
      signal: null,
      reason: e.reason,
      message: e.message,
      simulated: false,
      ...(e.peakVramMiB !== undefined && { peakVramMiB: e.peakVramMiB }),
      residentModels: resident,
    });
  }
}

/** An attempt that ended before anything was sent. */
export function endedAtSetup(attempt: AttemptSpec, message: string, workspace: string | null = null): RunningAttempt {
  const outcome: AttemptOutcome = { exitCode: null, signal: null, reason: "setup-failed", message, simulated: false };
  return {
    attemptId: attempt.attemptId,
    pid: null,
    workspace,
    done: Promise.resolve(outcome),
    cancel: () => undefined,
    commitOutputs: () => Promise.reject(new Error(`attempt ${attempt.number} of stage '${attempt.stageId}' never ran: ${message}`)),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
