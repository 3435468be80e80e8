/**
 * The runs stream of a control plane that hears of changes only through the store (cluster mode): it
 * reads the store every eventPollMs and sends what changed since, and nothing at connect.
 */
import { EventEmitter } from "node:events";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import type { HttpParts } from "../../../runtime/agent/api/parts.ts";
import { registerRunListRoutes } from "../../../runtime/agent/api/routes/run-list.ts";
import type {
  ListedRun,
  RunListOptions,
} from "../../../runtime/agent/store/types.ts";

const run = (
  id: string,
  status: ListedRun["status"],
  running = 0
): ListedRun => ({
  id,
  tenant: "studio",
  workflow: "wf",
  format: "native",
  priority: "batch",
  status,
  idempotencyKey: null,
  submittedBy: "alice",
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: new Date().toISOString(),
  stageCounts: { total: 2, succeeded: 0, running, failed: 0 },
});

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

describe("GET /v1/runs/stream in cluster mode", () => {
  it("polls the store every eventPollMs and sends only the runs that changed, filtered", async () => {
    const rows: ListedRun[] = [run("r1", "queued"), run("r2", "queued")];
    const store = {
      async listRuns(tenant: string, o: RunListOptions = {}) {
        return rows.filter(
          (r) =>
            r.tenant === tenant &&
            (o.status === undefined || r.status === o.status) &&
            (o.ids === undefined || o.ids.includes(r.id))
        );
      },
    };
    const parts = {
      store,
      loop: { changes: new EventEmitter() },
      eventPollMs: 50,
    } as unknown as HttpParts;
    const app = Fastify();
    apps.push(app);
    app.decorateRequest("identity", null);
    app.addHook("onRequest", async (request) => {
      request.identity = { subject: "alice", tenant: "studio" } as never;
    });
    registerRunListRoutes(app, parts);
    const url = await app.listen({ port: 0, host: "127.0.0.1" });
    const abort = new AbortController();
    const res = await fetch(`${url}/v1/runs/stream?status=running`, {
      signal: abort.signal,
    });
    const reader = res.body!.getReader();
    let text = "";
    // One read in flight at a time: a read that outlives a timeout still delivers its chunk.
    let pending: ReturnType<typeof reader.read> | null = null;
    const readUntil = async (pattern: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!pattern.test(text) && Date.now() < deadline) {
        pending ??= reader.read();
        const chunk = await Promise.race([
          pending,
          new Promise<null>((r) =>
            setTimeout(() => r(null), deadline - Date.now())
          ),
        ]);
        if (chunk === null) continue;
        pending = null;
        if (!chunk.done) text += new TextDecoder().decode(chunk.value);
      }
      return pattern.test(text);
    };
    try {
      // Nothing at connect: the page has just listed the runs.
      expect(await readUntil(/event: run/, 300)).toBe(false);
      // Another control plane starts r1.
      rows[0] = run("r1", "running", 1);
      const changedAt = Date.now();
      expect(await readUntil(/"id":"r1"/, 2000)).toBe(true);
      expect(Date.now() - changedAt).toBeLessThan(300);
      expect(text.match(/event: run/g)).toHaveLength(1);
      expect(text).not.toContain('"id":"r2"');
      // r1 leaves the filter: sent once more, so the page can drop it.
      rows[0] = run("r1", "succeeded");
      expect(await readUntil(/"status":"succeeded"/, 2000)).toBe(true);
    } finally {
      abort.abort();
    }
  });
});
