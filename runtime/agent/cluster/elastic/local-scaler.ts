/**
 * The local provider of elasticity (`gpufabric dev --workers auto`): worker processes on this machine, one
 * per slot (a node of the pool), started and stopped as the demand says. It implements the same WorkerScaler
 * interface as the Kubernetes scale subresource:
 *
 *  - scale-up starts workers in free slots at once; they count (as starting) from that moment, so a
 *    second call does not start more for the same demand;
 *  - scale-down sends SIGTERM to the surplus: a starting worker first (it holds nothing yet), then idle
 *    ones, longest idle first, and a busy one only when nothing else is left. A worker drains on SIGTERM
 *    (it takes no new stages and exits once its running ones have ended), so even a busy one loses no stage;
 *  - a draining worker no longer counts; its slot is free again once its process has exited.
 *
 * Which workers are busy comes from `busy` (the leader's view: what runs on each node's GPUs).
 */
import type { Logger } from "pino";
import type { WorkerScaler } from "./scaler.ts";

/** What starts and stops the worker processes of the slots (LocalCluster). */
export interface LocalWorkerLauncher {
  /** Slots: the pool's nodes, the most workers there can be. */
  readonly slots: number;
  /** Starts slot `slot`'s worker; resolves once it registered, with a promise of its exit. */
  startWorker(slot: number): Promise<{ readonly info: { readonly pid: number; readonly node?: string }; readonly exited: Promise<number | null> }>;
  /** Sends a signal to slot `slot`'s worker (`worker-<slot>`). */
  signal(name: string, signal: NodeJS.Signals): void;
}

export type SlotState = "free" | "starting" | "up" | "draining";

export interface LocalScalerOptions {
  readonly launcher: LocalWorkerLauncher;
  /** The pool this scaler serves (the deployment's: a local cluster schedules one). */
  readonly pool: string;
  /** The node each slot's worker serves (`<pool>-n<slot>`). */
  readonly nodeOf: (slot: number) => string;
  /** Whether a node's GPUs run a stage now (unknown nodes: false). */
  readonly busy?: (node: string) => boolean;
  readonly logger: Logger;
}

interface Slot {
  state: SlotState;
  /** When it last started or was last seen idle (ms), for longest-idle-first. */
  since: number;
  /** Ends when the process has exited. */
  exited?: Promise<number | null>;
}

export class LocalScaler implements WorkerScaler {
  readonly kind = "local" as const;
  private readonly slots: Slot[];
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;
  /** Every start and every stop, in order (what the live test checks the count against). */
  readonly history: Array<{ atMs: number; slot: number; what: "start" | "up" | "stop" | "exit" | "failed"; workers: number; code?: number | null }> = [];

  constructor(private readonly o: LocalScalerOptions) {
    this.slots = Array.from({ length: o.launcher.slots }, () => ({ state: "free" as SlotState, since: Date.now() }));
  }

  /** Workers up or starting, not draining. */
  async current(pool: string): Promise<number> {
    this.checkPool(pool);
    return this.count();
  }

  /** Each slot's state, by index. */
  states(): SlotState[] {
    return this.slots.map((s) => s.state);
  }

  async scaleTo(pool: string, replicas: number): Promise<void> {
    this.checkPool(pool);
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`replicas must be a whole number of 0 or more (got ${replicas})`);
    if (this.closed) return;
    const want = Math.min(replicas, this.slots.length);
    if (want > this.count()) {
      for (let i = 0; i < this.slots.length && this.count() < want; i++) if (this.slots[i]!.state === "free") this.start(i);
      return;
    }
    const surplus = this.count() - want;
    for (const i of this.victims().slice(0, surplus)) this.stop(i);
  }

  /** Stops every worker it started (SIGINT: at once, as the cluster's own stop does) and waits for them. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending]);
    const exits: Array<Promise<unknown>> = [];
    this.slots.forEach((s, i) => {
      if (s.state === "free") return;
      this.signal(i, "SIGINT");
      if (s.exited) exits.push(s.exited);
    });
    await Promise.allSettled(exits);
  }

  private count(): number {
    return this.slots.filter((s) => s.state === "starting" || s.state === "up").length;
  }

  /** Surplus candidates, best first: starting ones, then idle (longest idle first), then busy ones. */
  private victims(): number[] {
    const now = Date.now();
    const rank = (i: number): number => {
      const s = this.slots[i]!;
      if (s.state === "starting") return 0;
      return this.o.busy?.(this.o.nodeOf(i)) ? 2 : 1;
    };
    // Idle since: a slot seen busy now is refreshed, so the one idle longest goes first.
    this.slots.forEach((s, i) => {
      if (s.state === "up" && this.o.busy?.(this.o.nodeOf(i))) s.since = now;
    });
    return this.slots
      .map((_, i) => i)
      .filter((i) => this.slots[i]!.state === "starting" || this.slots[i]!.state === "up")
      .sort((a, b) => rank(a) - rank(b) || this.slots[a]!.since - this.slots[b]!.since || b - a);
  }

  private start(i: number): void {
    const slot = this.slots[i]!;
    slot.state = "starting";
    slot.since = Date.now();
    this.note(i, "start");
    this.o.logger.info({ slot: i, node: this.o.nodeOf(i) }, "scaling up: starting a worker");
    const p = this.o.launcher
      .startWorker(i)
      .then(({ exited }) => {
        slot.exited = exited;
        void exited.then((code) => {
          slot.state = "free";
          slot.exited = undefined;
          this.note(i, "exit", code);
        });
        if (slot.state === "starting") {
          slot.state = "up";
          slot.since = Date.now();
          this.note(i, "up");
        } else if (slot.state === "draining") {
          // Stopped while it started: the signal could not reach a process not yet spawned.
          this.signal(i, "SIGTERM");
        }
      })
      .catch((err: unknown) => {
        slot.state = "free";
        this.note(i, "failed");
        this.o.logger.error({ err: (err as Error).message, slot: i }, "a worker could not be started");
      })
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private stop(i: number): void {
    const slot = this.slots[i]!;
    const wasUp = slot.state === "up";
    slot.state = "draining";
    this.note(i, "stop");
    this.o.logger.info({ slot: i, node: this.o.nodeOf(i) }, "scaling down: the worker drains and exits");
    if (wasUp) this.signal(i, "SIGTERM");
  }

  private signal(i: number, signal: NodeJS.Signals): void {
    try {
      this.o.launcher.signal(`worker-${i}`, signal);
    } catch {
      // Never started (a failed start): nothing to stop.
    }
  }

  private note(slot: number, what: "start" | "up" | "stop" | "exit" | "failed", code?: number | null): void {
    this.history.push({ atMs: Date.now(), slot, what, workers: this.count(), ...(code !== undefined && { code }) });
  }

  private checkPool(pool: string): void {
    if (pool !== this.o.pool) throw new RangeError(`this local scaler serves pool '${this.o.pool}', not '${pool}'`);
  }
}
