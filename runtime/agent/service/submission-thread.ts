/**
 * Large submissions are validated on a thread of their own. Importing a 10,000-node ComfyUI prompt
 * (parse, graph checks, cost estimates, segmentation) takes hundreds of milliseconds of CPU: on the event
 * loop that serves the API, /healthz and every other client would wait that long, and any submitter
 * could repeat it. Small bodies (most submissions) stay on the event loop, where they cost less than
 * the hop to the thread.
 */
import { Worker } from "node:worker_threads";
import type { PlatformConfig } from "../../config/schema.ts";
import { parseWorkflow, type CostModel, type CostModelSnapshot, type Stage, type WorkflowGraph } from "../../graph/index.ts";
import type { GpuSpec } from "../../scheduler/inventory.ts";
import type { NewRun } from "../store/types.ts";
import type { FieldIssue } from "../../config/errors.ts";
import { ApiError } from "./api-error.ts";
import type { PreparedRun } from "./submission.ts";

/** Bodies at least this large are validated on the thread (a prompt of about 700 nodes; ~30 ms on the event loop). */
export const THREADED_SUBMISSION_BYTES = 64 * 1024;
/** Large submissions waiting for the thread beyond this are refused with a 503 (retry later), not queued without end. */
export const MAX_QUEUED_SUBMISSIONS = 16;

export interface SubmissionThreadInit {
  readonly config: PlatformConfig;
  readonly gpus: readonly GpuSpec[];
  readonly headroomMiB: number;
  readonly maxJsonDepth?: number;
}

export interface SubmissionRequest {
  readonly id: number;
  readonly text: string;
  readonly tenant: string;
  readonly idempotencyKey: string | undefined;
  readonly costModel: CostModelSnapshot;
}

export type SubmissionReply =
  | { readonly id: number; readonly ok: true; readonly prepared: string }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly status: number; readonly code: string; readonly message: string; readonly field?: string | undefined; readonly rule?: string | undefined; readonly issues?: readonly FieldIssue[] | undefined };
    };

interface Pending {
  readonly body: { readonly workflow?: unknown; readonly inputs?: Readonly<Record<string, unknown>> };
  resolve(prepared: PreparedRun): void;
  reject(err: Error): void;
}

export class SubmissionThread {
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(
    private readonly init: SubmissionThreadInit,
    private readonly costModel: CostModel
  ) {}

  /**
   * Validates a submission on the thread from its JSON text; `body` is the same text already parsed
   * (depth-checked, prototype keys refused), whose document and inputs the prepared run keeps.
   */
  prepare(text: string, body: unknown, tenant: string, idempotencyKey: string | undefined): Promise<PreparedRun> {
    if (this.#pending.size >= MAX_QUEUED_SUBMISSIONS) {
      return Promise.reject(new ApiError(503, "submissions-busy", `${MAX_QUEUED_SUBMISSIONS} large submissions are being validated: retry in a few seconds`));
    }
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise<PreparedRun>((resolve, reject) => {
      this.#pending.set(id, { body: body as Pending["body"], resolve, reject });
      worker.ref();
      const request: SubmissionRequest = { id, text, tenant, idempotencyKey, costModel: this.costModel.snapshot() };
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL("./submission-worker.cjs", import.meta.url), { workerData: this.init });
    worker.unref();
    worker.on("message", (reply: SubmissionReply) => this.#answer(reply));
    const fail = (err: Error) => {
      // A thread that died answers nothing more: its callers fail (logged as a 500) and the next call starts a new one.
      if (this.#worker === worker) this.#worker = undefined;
      for (const pending of this.#pending.values()) pending.reject(err);
      this.#pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the submission thread exited (${code})`)));
    this.#worker = worker;
    return worker;
  }

  #answer(reply: SubmissionReply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#worker?.unref();
    if (!reply.ok) {
      const e = reply.error;
      pending.reject(e.status >= 500 ? new Error(`submission thread: ${e.message}`) : new ApiError(e.status, e.code, e.message, e.field, e.rule, e.issues));
      return;
    }
    const parsed = JSON.parse(reply.prepared) as { graph: Omit<WorkflowGraph, "stages">; stages: Stage[]; run: Omit<NewRun, "document" | "inputs" | "stages"> };
    const { workflow, inputs } = pending.body;
    const maxDepth = this.init.maxJsonDepth;
    let graphStages: readonly Stage[] | undefined;
    const graph = Object.defineProperty(parsed.graph, "stages", {
      enumerable: true,
      // Parsed again, on this thread, only if something reads them (nothing does on the way to running the run).
      get: () => (graphStages ??= parseWorkflow(workflow, { source: "workflow", ...(maxDepth !== undefined && { maxDepth }) }).stages),
    }) as WorkflowGraph;
    pending.resolve({
      graph,
      stages: parsed.stages,
      newRun: { ...parsed.run, stages: parsed.stages, document: workflow, ...(inputs !== undefined && { inputs }) },
    });
  }
}
