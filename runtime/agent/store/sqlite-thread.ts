/**
 * The embedded SQLite store on a thread of its own. better-sqlite3 is synchronous: every statement, every
 * group commit (several pages written to the WAL per transaction) and every checkpoint runs on the thread
 * that calls it. Under a submission storm that is a third of the agent's event loop, time in which it
 * parses, authenticates, audits and answers nothing. Here the same SqliteStore runs in a worker thread and
 * this class forwards the Store calls to it: the calls keep their order, writes still settle only once
 * durable (at `full`, SQLite's synchronous=FULL syncs the WAL inside each group's COMMIT, on that thread),
 * and errors come back as the same classes (ValidationError, TransitionError, RangeError).
 */
import { Worker } from "node:worker_threads";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import type { Durability, StoreUnavailableError as StoreUnavailableErrorType } from "./sqlite-store.ts";
import { StoreUnavailableError } from "./sqlite-store.ts";
import { TransitionError, type Store } from "./types.ts";

export interface ThreadedStoreOptions {
  readonly durability?: Durability;
  readonly maxBatch?: number;
}

/** The Store methods the thread answers (and nothing else). */
export const STORE_METHODS = [
  "createRun",
  "getRun",
  "listRuns",
  "replaceRunFields",
  "compact",
  "activeRuns",
  "readyStages",
  "markPlaced",
  "markRunning",
  "markSealing",
  "markSucceeded",
  "markFailed",
  "cancelRun",
  "recover",
  "eventsSince",
  "artifactsOf",
  "queueDepth",
  "usage",
  "stageTimes",
  "close",
] as const satisfies ReadonlyArray<keyof Store>;
export type StoreMethod = (typeof STORE_METHODS)[number];

export interface StoreCall {
  readonly id: number;
  readonly method: StoreMethod;
  readonly args: readonly unknown[];
}

/** An error as it crosses the thread boundary. */
export type EncodedError =
  | { readonly kind: "validation"; readonly message: string; readonly issues: readonly FieldIssue[] }
  | { readonly kind: "transition"; readonly message: string; readonly current: string | null }
  | { readonly kind: "unavailable" | "range"; readonly message: string }
  | { readonly kind: "error"; readonly name: string; readonly message: string; readonly code?: string };

export type StoreReply = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: EncodedError };

export function encodeError(err: unknown): EncodedError {
  if (err instanceof ValidationError) return { kind: "validation", message: err.message, issues: err.issues };
  if (err instanceof TransitionError) return { kind: "transition", message: err.message, current: err.current };
  if (err instanceof StoreUnavailableError) return { kind: "unavailable", message: err.message };
  if (err instanceof RangeError) return { kind: "range", message: err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return { kind: "error", name: e.name, message: e.message, ...(typeof code === "string" && { code }) };
}

export function decodeError(e: EncodedError): Error {
  switch (e.kind) {
    case "validation": {
      const err = new ValidationError("run", e.issues);
      err.message = e.message;
      return err;
    }
    case "transition":
      return new TransitionError(e.message, e.current);
    case "unavailable":
      return new StoreUnavailableError(e.message) as StoreUnavailableErrorType;
    case "range":
      return new RangeError(e.message);
    case "error": {
      const err = new Error(e.message);
      err.name = e.name;
      if (e.code !== undefined) (err as Error & { code?: string }).code = e.code;
      return err;
    }
  }
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Opens the store at `file` on its own thread (the database is opened, and migrated, there). */
export function openThreadedSqliteStore(file: string, options: ThreadedStoreOptions = {}): ThreadedSqliteStore {
  return new ThreadedSqliteStore(file, options);
}

export class ThreadedSqliteStore implements Store {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private gone: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(file: string, options: ThreadedStoreOptions = {}) {
    // A small young generation: the thread only turns messages into statements, and every MiB counts with 10,000 runs queued.
    this.worker = new Worker(new URL("./sqlite-worker.cjs", import.meta.url), { workerData: { file, options }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    // Like the in-thread store, an idle store does not keep the process alive; a call in flight does.
    this.worker.unref();
    this.worker.on("message", (reply: StoreReply) => {
      const call = this.pending.get(reply.id);
      if (call === undefined) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) this.worker.unref();
      if (reply.ok) call.resolve(reply.value);
      else call.reject(decodeError(reply.error));
    });
    this.worker.on("error", (err) => this.fail(new StoreUnavailableError(`the store's thread failed: ${err.message}`, { cause: err })));
    this.worker.on("exit", (code) => this.fail(new StoreUnavailableError(`the store's thread exited (code ${code})`)));
  }

  createRun: Store["createRun"] = (...args) => this.call("createRun", args);
  getRun: Store["getRun"] = (...args) => this.call("getRun", args);
  listRuns: Store["listRuns"] = (...args) => this.call("listRuns", args);
  replaceRunFields: Store["replaceRunFields"] = (...args) => this.call("replaceRunFields", args);
  compact: Store["compact"] = () => this.call("compact", []);
  activeRuns: Store["activeRuns"] = () => this.call("activeRuns", []);
  readyStages: Store["readyStages"] = (...args) => this.call("readyStages", args);
  markPlaced: Store["markPlaced"] = (...args) => this.call("markPlaced", args);
  markRunning: Store["markRunning"] = (...args) => this.call("markRunning", args);
  markSealing: Store["markSealing"] = (...args) => this.call("markSealing", args);
  markSucceeded: Store["markSucceeded"] = (...args) => this.call("markSucceeded", args);
  markFailed: Store["markFailed"] = (...args) => this.call("markFailed", args);
  cancelRun: Store["cancelRun"] = (...args) => this.call("cancelRun", args);
  recover: Store["recover"] = () => this.call("recover", []);
  eventsSince: Store["eventsSince"] = (...args) => this.call("eventsSince", args);
  artifactsOf: Store["artifactsOf"] = (...args) => this.call("artifactsOf", args);
  queueDepth: Store["queueDepth"] = () => this.call("queueDepth", []);
  usage: Store["usage"] = (...args) => this.call("usage", args);
  stageTimes: Store["stageTimes"] = (...args) => this.call("stageTimes", args);

  /** Settles every queued write, closes the database, and ends the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.gone === undefined) {
        try {
          await this.call("close", []);
        } finally {
          await this.worker.terminate();
        }
      }
    })();
    return this.closing;
  }

  private call<T>(method: StoreMethod, args: readonly unknown[]): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ id, method, args } satisfies StoreCall);
    });
  }

  private fail(error: Error): void {
    if (this.gone) return;
    this.gone = this.closing ? new StoreUnavailableError("the store is closed") : error;
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}
