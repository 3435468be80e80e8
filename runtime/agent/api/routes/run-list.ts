/**
 * The runs list: `GET /v1/runs` (a page of the tenant's runs, newest first, with an opaque cursor to the
 * next) and `GET /v1/runs/stream` (server-sent events: a `run` event with the run's summary each time one
 * of the tenant's runs changes). The stream hears of changes made here from the loop at once, and of
 * changes made by another control plane of a cluster by reading the store every `eventPollMs`.
 */
import { holdStream } from "../../service/open-streams.ts";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ListedRun, RunListOptions } from "../../store/types.ts";
import { NO_STAGES } from "../../store/run-list.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";
import { encodeCursor, type RunSummary } from "./run-list.schemas.ts";

const DEFAULT_PAGE = 50;
const KEEPALIVE_MS = 15_000;
/** Runs re-read by a poll: the newest, and every one still queued or running (what can still change). */
const POLL_WINDOW = 200;

export function runSummary(run: ListedRun): RunSummary {
  return {
    id: run.id,
    status: run.status,
    workflow: run.workflow,
    priority: run.priority,
    submittedBy: run.submittedBy,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    stages: run.stageCounts ?? NO_STAGES,
  };
}

type Filter = Pick<RunListOptions, "status" | "workflow" | "priority">;

function matches(run: RunSummary, filter: Filter): boolean {
  return (filter.status === undefined || run.status === filter.status) && (filter.workflow === undefined || run.workflow === filter.workflow) && (filter.priority === undefined || run.priority === filter.priority);
}

export function registerRunListRoutes(app: FastifyInstance, parts: HttpParts): void {
  app.get("/v1/runs", async (request) => {
    const { status, workflow, priority, limit, cursor } = parseRequest(request, "GET /v1/runs").query;
    const pageSize = limit ?? DEFAULT_PAGE;
    // One more than the page tells whether another page follows, without a count over every run.
    const runs = await parts.store.listRuns(request.identity!.tenant, {
      ...(status && { status }),
      ...(workflow && { workflow }),
      ...(priority && { priority }),
      ...(cursor && { before: cursor }),
      limit: pageSize + 1,
      stageCounts: true,
    });
    const page = runs.slice(0, pageSize);
    const last = page[page.length - 1];
    return { runs: page.map(runSummary), nextCursor: runs.length > pageSize && last ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
  });

  app.get("/v1/runs/stream", async (request, reply) => {
    const { status, workflow, priority } = parseRequest(request, "GET /v1/runs/stream").query;
    streamRunList(request, reply, parts, request.identity!.tenant, { ...(status && { status }), ...(workflow && { workflow }), ...(priority && { priority }) });
  });
}

/**
 * A run is sent when it changed and matches the filter, and also when it was sent before and no longer
 * matches (a run that left `status=running` is sent once more, so the page can drop it).
 */
export function streamRunList(request: FastifyRequest, reply: FastifyReply, parts: HttpParts, tenant: string, filter: Filter): void {
  const { store, loop } = parts;
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
  raw.flushHeaders();
  const known = new Map<string, string>(); // run id → the summary last seen (JSON), sent or not
  const sent = new Set<string>();
  const pending = new Set<string>();
  let closed = false;
  let flushing: Promise<void> | null = null;
  let pollAll = false;
  let seeded = false;

  const consider = (summary: RunSummary) => {
    const json = JSON.stringify(summary);
    if (known.get(summary.id) === json) return;
    known.set(summary.id, json);
    if (!matches(summary, filter) && !sent.has(summary.id)) return;
    sent.add(summary.id);
    raw.write(`event: run\ndata: ${json}\n\n`);
  };
  const flush = async (): Promise<void> => {
    while (!closed && (pending.size > 0 || pollAll)) {
      if (pollAll) {
        pollAll = false;
        const seen = await Promise.all([
          store.listRuns(tenant, { limit: POLL_WINDOW, stageCounts: true }),
          store.listRuns(tenant, { status: "running", limit: 1000, stageCounts: true }),
          store.listRuns(tenant, { status: "queued", limit: 1000, stageCounts: true }),
        ]);
        for (const run of seen.flat()) {
          if (closed) return;
          // The first read only learns what the runs are: the page has just listed them.
          if (!seeded) {
            if (!known.has(run.id)) known.set(run.id, JSON.stringify(runSummary(run)));
          } else consider(runSummary(run));
        }
        seeded = true;
        continue;
      }
      const ids = [...pending].slice(0, 500);
      for (const id of ids) pending.delete(id);
      // Tenant-scoped by the store: another tenant's run id finds nothing.
      for (const run of await store.listRuns(tenant, { ids, stageCounts: true, limit: ids.length })) if (!closed) consider(runSummary(run));
    }
  };
  const kick = () => {
    if (flushing || closed) return;
    flushing = flush()
      .catch((err) => {
        request.log.warn({ err }, "runs stream failed");
        close();
      })
      .finally(() => {
        flushing = null;
        if (pending.size > 0 || pollAll) kick();
      });
  };
  const onChange = (runId: string) => {
    if (closed) return;
    pending.add(runId);
    kick();
  };
  const close = () => {
    if (closed) return;
    closed = true;
    loop.changes.off("run", onChange);
    clearInterval(keepalive);
    if (poll) clearInterval(poll);
    released();
    raw.end();
  };
  const released = holdStream(request, close);
  const keepalive = setInterval(() => {
    if (!closed) raw.write(": keepalive\n\n");
  }, KEEPALIVE_MS);
  // A control plane of a cluster hears of another one's changes only through the store.
  const pollMs = parts.eventPollMs ?? KEEPALIVE_MS;
  const poll = pollMs < KEEPALIVE_MS
    ? setInterval(() => {
        pollAll = true;
        kick();
      }, pollMs)
    : undefined;
  loop.changes.on("run", onChange);
  request.raw.on("close", close);
  if (poll) {
    pollAll = true;
    kick();
  }
}
