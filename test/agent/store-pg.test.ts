/**
 * The PostgreSQL store against a real server (test/support/postgres.ts starts one, or uses
 * GPUFABRIC_TEST_DATABASE_URL): the Store contract, then what only a shared database has to get right:
 * migrations raced by several control planes, leases and claims, wake-ups, and a server restart.
 * Each test works in a schema of its own, dropped afterwards.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  PG_LATEST_SCHEMA_VERSION,
  PG_MIGRATIONS,
  StoreUnavailableError,
  TransitionError,
  openPgStore,
  openStore,
  parseDatabase,
  PgStore,
  type Wake,
} from "../../runtime/agent/store/index.ts";
import { dropSchema, startTestPostgres, uniqueSchema, type TestPostgres } from "../support/postgres.ts";
import { diamondRun, stage } from "./fixtures/runs.ts";
import { describeStoreContract } from "./store-contract.ts";

const server = await startTestPostgres();
if ("skip" in server) console.warn(`note: PostgreSQL store tests skipped: ${server.skip}`);
const pgServer: TestPostgres | undefined = "skip" in server ? undefined : server;

afterAll(async () => {
  await pgServer?.stop();
});

if (pgServer === undefined) {
  describe.skip("PgStore (no PostgreSQL server)", () => {
    it("needs a PostgreSQL server", () => undefined);
  });
} else {
  const url = pgServer.url;
  let schema = uniqueSchema();
  describeStoreContract("PgStore", {
    open: async () => {
      schema = uniqueSchema();
      return openPgStore(url, { schema, maxConnections: 4 });
    },
    reopen: async () => openPgStore(url, { schema, maxConnections: 4 }),
    cleanup: async () => dropSchema(url, schema),
  });

  describe("PgStore", () => {
    const schemas: string[] = [];
    const stores: PgStore[] = [];
    const fresh = (): string => {
      const s = uniqueSchema();
      schemas.push(s);
      return s;
    };
    const open = async (s: string, options: Parameters<typeof openPgStore>[1] = {}) => {
      const store = await openPgStore(url, { schema: s, maxConnections: 4, ...options });
      stores.push(store);
      return store;
    };
    const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query<T>(sql, params)).rows;
      } finally {
        await client.end();
      }
    };
    afterEach(async () => {
      for (const s of stores.splice(0)) await s.close();
      for (const s of schemas.splice(0)) await dropSchema(url, s);
    });

    it("writes a storm of submissions in group commits, each as if alone: one run per idempotency key, a bad one failing alone", async () => {
      const s = fresh();
      const store = await open(s);
      const taken = randomUUID();
      const first = await store.createRun({ ...diamondRun("studio"), id: taken });
      const storm = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) =>
          // Every tenth shares one key; one reuses an existing run's id, which the database refuses.
          store.createRun(i === 77 ? { ...diamondRun("rival"), id: taken } : diamondRun(i % 2 === 0 ? "studio" : "rival", i % 10 === 0 ? "same-key" : undefined))
        )
      );
      expect(storm[77]!.status).toBe("rejected");
      const ok = storm.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      expect(ok).toHaveLength(199);
      // Keyed submissions of one tenant end as one run: the first created, the others given it.
      const keyed = ok.filter((_, i) => (i < 77 ? i : i + 1) % 10 === 0);
      expect(keyed).toHaveLength(20);
      expect(new Set(keyed.map((r) => r.run.id)).size).toBe(1);
      expect(keyed.filter((r) => r.created)).toHaveLength(1);
      const rows = await query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.runs`);
      expect(Number(rows[0]!.n)).toBe(1 + 199 - 19);
      const stages = await query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.stages`);
      expect(Number(stages[0]!.n)).toBe((1 + 199 - 19) * 4);
      const events = await query<{ n: string }>(`SELECT count(*) AS n FROM ${s}.events WHERE type = 'run.accepted'`);
      expect(Number(events[0]!.n)).toBe(1 + 199 - 19);
      expect((await store.getRun("studio", first.run.id))?.run.workflow).toBe("diamond");
    });

    it("migrates once when several control planes open a fresh database at the same moment", async () => {
      const s = fresh();
      const opened = await Promise.all(Array.from({ length: 4 }, () => open(s)));
      expect(opened.map((o) => o.schemaVersion)).toEqual(Array(4).fill(PG_LATEST_SCHEMA_VERSION));
      const versions = await query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations ORDER BY version`);
      expect(versions.map((v) => v.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
    });

    it("upgrades a schema built by an older version, keeping its runs; refuses a newer one", async () => {
      const s = fresh();
      const old = await open(s, { migrations: PG_MIGRATIONS.slice(0, 1) });
      expect(old.schemaVersion).toBe(1);
      const { run } = await old.createRun(diamondRun("studio", "before-upgrade"));
      await old.close();
      const upgraded = await open(s);
      expect(upgraded.schemaVersion).toBe(PG_LATEST_SCHEMA_VERSION);
      expect((await upgraded.getRun("studio", run.id))!.stages).toHaveLength(4);
      expect((await upgraded.createRun(diamondRun("studio", "before-upgrade"))).run.id).toBe(run.id);
      const columns = await query<{ column_name: string }>(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'attempts' AND column_name LIKE 'lease%' ORDER BY 1",
        [s]
      );
      expect(columns.map((c) => c.column_name)).toEqual(["lease_expires_at", "lease_owner"]);

      await query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, 'future')`, [PG_LATEST_SCHEMA_VERSION + 1]);
      await expect(openPgStore(url, { schema: s })).rejects.toThrow(/version \d+ but this agent knows versions up to .*--database/);
      await expect(openPgStore(url, { schema: "Bad-Name" })).rejects.toThrow(/schema must be a lowercase PostgreSQL identifier/);
    });

    it("commits with synchronous_commit on, even when the connection string asks for off", async () => {
      const s = fresh();
      const sep = url.includes("?") ? "&" : "?";
      const store = await open(s, {});
      const lax = await openPgStore(`${url}${sep}options=${encodeURIComponent("-c synchronous_commit=off")}`, { schema: s });
      stores.push(lax);
      expect((await store.settings()).synchronousCommit).toBe("on");
      expect((await lax.settings()).synchronousCommit).toBe("on");
      // The schema setting survives the URL's options too: the store finds its tables.
      expect(await lax.listRuns("studio")).toEqual([]);
    });

    it("is what --database postgres://…?schema=NAME opens", async () => {
      const s = fresh();
      const sep = url.includes("?") ? "&" : "?";
      const store = await openStore(parseDatabase(`${url}${sep}schema=${s}`, "/unused"));
      stores.push(store as PgStore);
      expect(store).toBeInstanceOf(PgStore);
      await store.createRun(diamondRun("studio"));
      expect(await query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${s}.runs`)).toEqual([{ n: 1 }]);
    });

    it("accepts one run per idempotency key when two control planes race with it", async () => {
      const s = fresh();
      const [a, b] = [await open(s), await open(s)];
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).createRun(diamondRun("studio", "same-key"))));
      expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await a.listRuns("studio")).toHaveLength(1);
    });

    it("places a stage once when two control planes race for it, and a reader resuming by event id misses no event", async () => {
      const s = fresh();
      const [cp1, cp2] = [await open(s), await open(s)];
      const wide = { ...diamondRun("studio"), stages: Array.from({ length: 24 }, (_, i) => stage(`s${i}`)) };
      const { run } = await cp1.createRun(wide);
      // A reader follows the run's events by cursor while the writes race: with ids handed out in an
      // order other than commit order, it would step past an id committed late.
      const seen: number[] = [];
      let cursor = 0;
      let writing = true;
      const reader = (async () => {
        while (writing) {
          const page = (await cp2.eventsSince("studio", run.id, cursor))!;
          for (const e of page) seen.push(e.id);
          if (page.length > 0) cursor = page[page.length - 1]!.id;
        }
      })();
      const tries = wide.stages.flatMap((st) =>
        [cp1, cp2].map((cp) => cp.markPlaced({ runId: run.id, stageId: st.id, gpus: ["g"], explanation: null }).then(
          async (a) => {
            await cp.markRunning(a.id, { pid: 1, workspace: "/ws" });
            return a;
          },
          (e: unknown) => e
        ))
      );
      const outcomes = await Promise.all(tries);
      writing = false;
      await reader;
      const placed = outcomes.filter((o) => !(o instanceof Error));
      expect(placed).toHaveLength(wide.stages.length);
      expect(outcomes.filter((o) => o instanceof TransitionError)).toHaveLength(wide.stages.length);
      const rest = (await cp1.eventsSince("studio", run.id, cursor))!.map((e) => e.id);
      const all = (await cp1.eventsSince("studio", run.id, 0))!.map((e) => e.id);
      expect([...seen, ...rest]).toEqual(all);
    });

    it("hands each placed attempt to one worker (SKIP LOCKED), only on its own devices, and keeps it while heartbeats come", async () => {
      const s = fresh();
      const [cp1, cp2] = [await open(s), await open(s)];
      const placed = [];
      for (let i = 0; i < 3; i++) {
        const { run } = await cp1.createRun(diamondRun("studio", `k${i}`));
        placed.push(await cp1.markPlaced({ runId: run.id, stageId: "a", gpus: [i === 2 ? "node-b/gpu-0" : `node-a/gpu-${i}`], explanation: null }));
      }
      const [first, second] = await Promise.all([
        cp1.claimPlaced({ owner: "node-a", leaseMs: 60_000, devices: ["node-a/gpu-0", "node-a/gpu-1"] }),
        cp2.claimPlaced({ owner: "node-a", leaseMs: 60_000, devices: ["node-a/gpu-0", "node-a/gpu-1"] }),
      ]);
      expect([...first, ...second].map((a) => a.id).sort()).toEqual([placed[0]!.id, placed[1]!.id].sort());
      const b = await cp2.claimPlaced({ owner: "node-b", leaseMs: 60_000, limit: 5 });
      expect(b.map((a) => a.id)).toEqual([placed[2]!.id]);
      expect(await cp1.claimPlaced({ owner: "node-c", leaseMs: 60_000 })).toEqual([]);

      const beat = await cp2.heartbeat("node-a", [placed[0]!.id, placed[1]!.id, placed[2]!.id], 60_000);
      expect(beat.renewed.map((r) => r.attemptId).sort()).toEqual([placed[0]!.id, placed[1]!.id].sort());
      expect(beat.lost).toEqual([placed[2]!.id]);
      // A restarting control plane leaves alone the attempts live workers hold.
      expect((await cp1.recover()).interrupted).toEqual([]);
      expect(await cp1.expireLeases()).toEqual({ interrupted: [], requeuedStages: 0 });
      await expect(cp1.claimPlaced({ owner: "", leaseMs: 10 })).rejects.toThrow(/owner must name the lease holder/);
      await expect(cp1.claimPlaced({ owner: "w", leaseMs: 10 })).rejects.toThrow(/leaseMs must be a whole number of milliseconds from 100/);
    });

    it("interrupts the attempts of a worker that stopped heartbeating and places their stages again", async () => {
      const s = fresh();
      const store = await open(s);
      const { run } = await store.createRun(diamondRun("studio"));
      const a = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g0"], explanation: null });
      expect((await store.claimPlaced({ owner: "node-a", leaseMs: 200 })).map((x) => x.id)).toEqual([a.id]);
      await store.markRunning(a.id, { pid: 77, workspace: "/ws/a" });
      expect((await store.expireLeases()).interrupted).toEqual([]);
      await new Promise((r) => setTimeout(r, 300));
      const report = await store.expireLeases();
      expect(report.requeuedStages).toBe(1);
      expect(report.interrupted.map((x) => [x.id, x.status, x.pid])).toEqual([[a.id, "interrupted", 77]]);
      expect(report.interrupted[0]!.reason).toMatch(/lease expired/);
      // The worker coming back finds it lost, and its late reports are stale.
      expect((await store.heartbeat("node-a", [a.id], 1000)).lost).toEqual([a.id]);
      await expect(store.markSealing(a.id, { exitCode: 0 })).rejects.toThrow(/already closed \(interrupted\)/);
      expect((await store.readyStages()).map((r) => r.stage.stageId)).toEqual(["a"]);
      const events = (await store.eventsSince("studio", run.id, 0))!;
      expect(events.find((e) => e.type === "stage.interrupted")!.data).toMatchObject({ attemptId: a.id, was: "running", leaseOwner: "node-a" });
      const again = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g1"], explanation: null });
      expect(again.number).toBe(2);
    });

    it("wakes listeners when stages become ready or attempts are placed", async () => {
      const s = fresh();
      const store = await open(s);
      const woken: Wake[] = [];
      const wakeups = store.listen((what) => woken.push(what));
      await wakeups.listening;
      const { run } = await store.createRun(diamondRun("studio"));
      await until(() => woken.includes("ready"));
      await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
      await until(() => woken.includes("placed"));
      // Another schema's writes do not wake this one's listeners.
      const other = await open(fresh());
      woken.length = 0;
      await other.createRun(diamondRun("studio"));
      await new Promise((r) => setTimeout(r, 200));
      expect(woken).toEqual([]);
      await wakeups.close();
    });
  });

  describe.runIf(pgServer.source !== "env")("PgStore across a database restart", () => {
    it("fails calls while the server is down, then reconnects: nothing accepted is lost, listeners are woken", async () => {
      const schema = uniqueSchema();
      const store = await openPgStore(url, { schema, maxConnections: 4 });
      try {
        const accepted = await Promise.all(Array.from({ length: 20 }, (_, i) => store.createRun(diamondRun("studio", `r${i}`))));
        const woken: Wake[] = [];
        const wakeups = store.listen((what) => woken.push(what));
        await wakeups.listening;

        await pgServer.kill();
        const refused = await store.createRun(diamondRun("studio", "while-down")).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(StoreUnavailableError);
        expect((refused as Error).message).toMatch(/cannot reach its database/);
        await pgServer.restart();

        // The pool replaces the broken connections on the next calls.
        let listed: unknown[] = [];
        for (let i = 0; i < 50 && listed.length === 0; i++) {
          listed = await store.listRuns("studio", { limit: 100 }).catch(() => []);
          if (listed.length === 0) await new Promise((r) => setTimeout(r, 100));
        }
        expect(listed).toHaveLength(accepted.length);
        expect((await store.createRun(diamondRun("studio", "after"))).created).toBe(true);
        // Reconnected, the listener is woken for every channel: it cannot know what it missed.
        await until(() => woken.includes("ready") && woken.includes("placed"), 10_000);
        expect(wakeups.connected).toBe(true);
        await wakeups.close();
      } finally {
        await store.close();
        await dropSchema(url, schema);
      }
    });
  });
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}
