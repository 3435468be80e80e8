/** Server-sent events of a run: `GET /v1/runs/{id}/events`, resumable after an event id. */
import { holdStream } from "./open-streams.ts";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Store } from "../store/types.ts";
import { TERMINAL_RUN_STATUSES } from "../store/types.ts";
import { ApiError } from "./api-error.ts";
import type { RunQueue } from "./run-queue.ts";

const TERMINAL_EVENTS = new Set(["run.succeeded", "run.failed", "run.cancelled"]);

/** An event id to resume after: a whole number from 0 to 2^53 - 1 (1e308 or 1.5 would pass a looser check and match nothing). */
export function eventId(value: string, field: string): number {
  const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new ApiError(400, "invalid-request", `${field}: must be the id of an event (a whole number from 0 to ${Number.MAX_SAFE_INTEGER}), or 0 for the whole stream`, field);
  }
  return n;
}

/**
 * `pollMs`: how often the store is read even when nothing here said the run changed (a control plane of a
 * cluster hears of another one's changes only through the store).
 */
export function streamEvents(request: FastifyRequest, reply: FastifyReply, store: Store, loop: RunQueue, tenant: string, runId: string, after: number, pollMs = 15_000): void {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  // Headers go out now, not with the first event: a stream that starts past the end has none to send yet.
  raw.flushHeaders();
  let last = after;
  let closed = false;
  let pumping: Promise<void> | null = null;
  let again = false;
  const close = () => {
    if (closed) return;
    closed = true;
    loop.changes.off("run", onChange);
    clearInterval(heartbeat);
    if (poll) clearInterval(poll);
    released();
    raw.end();
  };
  const released = holdStream(request, close);
  const runIsOver = async (): Promise<boolean> => {
    const detail = await store.getRun(tenant, runId);
    return detail === undefined || TERMINAL_RUN_STATUSES.includes(detail.run.status);
  };
  const pump = async (): Promise<void> => {
    do {
      again = false;
      const events = (await store.eventsSince(tenant, runId, last, 1000)) ?? [];
      for (const e of events) {
        if (closed) return;
        raw.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ ...e.data, stage: e.stageId, at: e.at })}\n\n`);
        last = e.id;
        if (TERMINAL_EVENTS.has(e.type)) return close();
      }
      if (events.length === 1000) again = true;
      // Nothing (more) to send and the run is over: its terminal event lies at or before `after`, so the
      // stream would otherwise stay open forever.
      else if (events.length === 0 && (await runIsOver())) return close();
    } while (again && !closed);
  };
  const onChange = (id: string) => {
    if (id !== runId || closed) return;
    if (pumping) {
      again = true;
      return;
    }
    pumping = pump()
      .catch((err) => {
        request.log.warn({ err }, "event stream failed");
        close();
      })
      .finally(() => (pumping = null));
  };
  // A comment line keeps proxies from closing an idle stream; the store is read again for changes made elsewhere.
  const heartbeat = setInterval(() => {
    if (!closed) raw.write(": keep-alive\n\n");
    onChange(runId);
  }, 15_000);
  const poll = pollMs < 15_000 ? setInterval(() => onChange(runId), pollMs) : undefined;
  loop.changes.on("run", onChange);
  request.raw.on("close", close);
  onChange(runId);
}
