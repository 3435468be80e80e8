/**
 * A worker's side of its ComfyUI servers towards the leader:
 *
 *  - Live events. What the worker's relay hears from its servers (the node executing, progress, cached
 *    nodes, previews) is forwarded to the leader in batches (`comfy-events`, at most MAX_COMFY_EVENTS a
 *    call, one call in flight, one every FLUSH_MS at most). The events are a live view, not a record (the
 *    store's events are): when the leader cannot be reached or the queue is full they are dropped and
 *    counted, never queued without bound; previews larger than MAX_COMFY_PREVIEW_BYTES are not sent.
 *  - Introspection. What its ready servers offer (the intersection, as ComfyServerPool computes it) is
 *    sent when the worker registers and whenever it changes (its hash differs), not with every heartbeat.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { Logger } from "pino";
import type { ComfyIntrospection, ComfyRelay, ComfyRelayMessage, ComfyRelayPreview } from "../executors/comfyui/contract.ts";
import { CLUSTER_PREFIX, MAX_COMFY_EVENTS, MAX_COMFY_PREVIEW_BYTES, type ComfyEvents } from "./protocol.ts";
import { ControlPlaneUnreachableError, type ControlPlaneClient } from "./worker-client.ts";

type Event = ComfyEvents["events"][number];

/** The attempt an event belongs to, as the worker holds it: its token proves it to the leader. */
export interface HeldAttempt {
  readonly workerId: string;
  readonly attemptId: string;
  readonly token: string;
}

export interface ComfyForwarderOptions {
  readonly client: ControlPlaneClient;
  readonly relay: ComfyRelay;
  readonly introspection: ComfyIntrospection;
  /** The held attempt of a message (by attempt id) or preview (by run and stage); undefined when none (or not registered). */
  readonly attemptOf: (ref: { attemptId?: string; runId: string; stageId: string }) => HeldAttempt | undefined;
  /** The worker id while registered. */
  readonly workerId: () => string | undefined;
  /** Changes when what the servers offer may have changed (ready servers and their generations). */
  readonly serversState: () => string;
  readonly logger: Logger;
  readonly flushMs?: number;
  /** Events waiting to be sent, at most; beyond it the oldest are dropped. */
  readonly maxQueued?: number;
  /** How often the introspection's state is looked at (ms). */
  readonly introspectEveryMs?: number;
}

export interface ForwarderStats {
  sent: number;
  dropped: number;
  refused: number;
  reports: number;
}

export const FLUSH_MS = 50;
const MAX_QUEUED = 1024;
const FAILURE_PAUSE_MS = 1000;
const RECHECK_MS = 30_000;
/** Bytes of previews in one call, at most (the rest waits for the next call). */
const MAX_BATCH_PREVIEW_BYTES = 1024 * 1024;

export class ComfyForwarder {
  readonly stats: ForwarderStats = { sent: 0, dropped: 0, refused: 0, reports: 0 };
  private queue: Event[] = [];
  /** Dropped since the last call that reached the leader (it is told how many). */
  private unreported = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private readonly introspectTimer: NodeJS.Timeout;
  /** The worker id and servers' state of the last report the leader took, and its hash. */
  private reported: { workerId: string; state: string; hash: string; at: number } | undefined;
  /** After a call that failed, the next waits until then (a leader that is away is not hammered). */
  private backoffUntil = 0;
  private reporting = false;
  private stopped = false;
  private warnedAt = 0;

  constructor(private readonly o: ComfyForwarderOptions) {
    o.relay.on("message", this.onMessage);
    o.relay.on("preview", this.onPreview);
    this.introspectTimer = setInterval(() => void this.introspect(), o.introspectEveryMs ?? 1000);
    this.introspectTimer.unref();
  }

  /** Sends what is queued now (e.g. before an attempt's end is reported, so its live events come first). */
  async flush(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      await (this.sending ??= this.send().finally(() => (this.sending = undefined)));
    }
    await this.sending;
  }

  /** Reports the introspection now if it changed (or the worker registered anew). */
  async introspect(): Promise<void> {
    const workerId = this.o.workerId();
    if (this.stopped || this.reporting || workerId === undefined) return;
    const state = this.o.serversState();
    // Looked at again now and then all the same: a server's read that failed may answer now.
    if (this.reported?.workerId === workerId && this.reported.state === state && Date.now() - this.reported.at < RECHECK_MS) return;
    this.reporting = true;
    try {
      const objectInfo = await this.o.introspection.objectInfo();
      const models = await this.o.introspection.models();
      const hash = createHash("sha256").update(canonicalize({ objectInfo, models }) ?? "").digest("hex");
      if (this.reported?.workerId === workerId && this.reported.hash === hash) {
        this.reported = { workerId, state, hash, at: Date.now() };
        return;
      }
      const res = await this.o.client.post<{ message?: string }>(`${CLUSTER_PREFIX}/comfy-introspection`, { workerId, hash, objectInfo, models }, 30_000);
      if (res.status === 200) {
        this.reported = { workerId, state, hash, at: Date.now() };
        this.stats.reports++;
      } else if (res.status !== 410 && res.status !== 421) {
        this.o.logger.warn({ status: res.status, message: res.body?.message }, "the leader refused the report of what the ComfyUI servers offer");
      }
    } catch (err) {
      if (!(err instanceof ControlPlaneUnreachableError)) this.o.logger.warn({ err: (err as Error).message }, "what the ComfyUI servers offer could not be read or reported; trying again");
    } finally {
      this.reporting = false;
    }
  }

  stop(): void {
    this.stopped = true;
    this.o.relay.off("message", this.onMessage);
    this.o.relay.off("preview", this.onPreview);
    clearInterval(this.introspectTimer);
    if (this.timer) clearTimeout(this.timer);
  }

  private readonly onMessage = (m: ComfyRelayMessage): void => {
    const a = this.o.attemptOf({ attemptId: m.attemptId, runId: m.runId, stageId: m.stageId });
    if (a === undefined) return this.drop(1);
    this.enqueue({ kind: "message", token: a.token, attemptId: a.attemptId, type: m.type, data: { ...m.data } });
  };

  private readonly onPreview = (p: ComfyRelayPreview): void => {
    const a = this.o.attemptOf({ runId: p.runId, stageId: p.stageId });
    if (a === undefined || p.payload.length > MAX_COMFY_PREVIEW_BYTES) return this.drop(1);
    this.enqueue({ kind: "preview", token: a.token, attemptId: a.attemptId, eventType: p.eventType, payload: p.payload.toString("base64") });
  };

  private enqueue(e: Event): void {
    if (this.stopped) return;
    this.queue.push(e);
    const max = this.o.maxQueued ?? MAX_QUEUED;
    // The newest events say the most about where a prompt is now: the oldest give way.
    if (this.queue.length > max) this.drop(this.queue.splice(0, this.queue.length - max).length);
    this.enqueueTimer();
  }

  /** A call after the pause (the rate limit), unless one is due already; another follows while events remain. */
  private enqueueTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending ??= this.send().finally(() => {
        this.sending = undefined;
        if (this.queue.length > 0 && !this.stopped) this.enqueueTimer();
      });
    }, Math.max(this.o.flushMs ?? FLUSH_MS, this.backoffUntil - Date.now()));
  }

  /** One call with the oldest queued events. */
  private async send(): Promise<void> {
    const workerId = this.o.workerId();
    if (workerId === undefined) {
      this.drop(this.queue.splice(0).length);
      return;
    }
    let previewBytes = 0;
    let n = 0;
    while (n < this.queue.length && n < MAX_COMFY_EVENTS) {
      const e = this.queue[n]!;
      if (e.kind === "preview") {
        if (n > 0 && previewBytes + e.payload.length > MAX_BATCH_PREVIEW_BYTES) break;
        previewBytes += e.payload.length;
      }
      n++;
    }
    const batch = this.queue.splice(0, n);
    if (batch.length === 0) return;
    const dropped = this.unreported;
    try {
      const res = await this.o.client.post<{ accepted?: number; refused?: number; message?: string }>(`${CLUSTER_PREFIX}/comfy-events`, { workerId, events: batch, dropped }, 5_000);
      if (res.status === 200) {
        this.unreported -= dropped;
        this.stats.sent += res.body.accepted ?? 0;
        this.stats.refused += res.body.refused ?? 0;
        return;
      }
      this.backoffUntil = Date.now() + FAILURE_PAUSE_MS;
      this.drop(batch.length, `the leader answered ${res.status}${res.body?.message ? `: ${res.body.message}` : ""}`);
    } catch (err) {
      this.backoffUntil = Date.now() + FAILURE_PAUSE_MS;
      this.drop(batch.length, (err as Error).message);
    }
  }

  private drop(n: number, why?: string): void {
    if (n === 0) return;
    this.stats.dropped += n;
    this.unreported += n;
    if (why !== undefined && Date.now() - this.warnedAt > 10_000) {
      this.warnedAt = Date.now();
      this.o.logger.warn({ dropped: this.stats.dropped, why }, "live ComfyUI events could not be forwarded to the leader and were dropped (the run's record is unaffected)");
    }
  }
}
