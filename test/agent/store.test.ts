import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  LATEST_SCHEMA_VERSION,
  SQLITE_MIGRATIONS,
  StoreUnavailableError,
  migrate,
  openSqliteStore,
  openThreadedSqliteStore,
  timeOrderedUuid,
  type SqliteStore,
} from "../../runtime/agent/store/index.ts";
import { diamondRun } from "./fixtures/runs.ts";
import { describeStoreContract } from "./store-contract.ts";

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-store-"));
  store = openSqliteStore(join(dir, "agent.db"));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

// The files live in `dir`, which the hooks above create and remove around each test.
describeStoreContract("SqliteStore", {
  open: async () => openSqliteStore(join(dir, "contract.db")),
  reopen: async () => openSqliteStore(join(dir, "contract.db")),
  cleanup: async () => undefined,
});

// The agent runs the same store on a thread of its own: the contract holds across the thread boundary.
describeStoreContract("ThreadedSqliteStore", {
  open: async () => openThreadedSqliteStore(join(dir, "threaded.db")),
  reopen: async () => openThreadedSqliteStore(join(dir, "threaded.db")),
  cleanup: async () => undefined,
});

describe("ThreadedSqliteStore", () => {
  it("reports a database it cannot open on the first call, with the reason", async () => {
    const db = new Database(join(dir, "newer.db"));
    migrate(db);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 'now')").run(LATEST_SCHEMA_VERSION + 1);
    db.close();
    const threaded = openThreadedSqliteStore(join(dir, "newer.db"));
    await expect(threaded.recover()).rejects.toThrow(/version \d+ but this agent knows versions up to/);
    await threaded.close();
  });

  it("keeps the order of calls, settles queued writes on close, and refuses calls after it", async () => {
    const threaded = openThreadedSqliteStore(join(dir, "order.db"));
    const created = await Promise.all(Array.from({ length: 50 }, (_, i) => threaded.createRun(diamondRun("studio", `k${i}`))));
    expect(new Set(created.map((c) => c.run.id)).size).toBe(50);
    const late = threaded.createRun(diamondRun("studio", "late"));
    await threaded.close();
    expect((await late).created).toBe(true);
    await expect(threaded.listRuns("studio")).rejects.toBeInstanceOf(StoreUnavailableError);
    const reopened = openSqliteStore(join(dir, "order.db"));
    expect(await reopened.listRuns("studio", { limit: 100 })).toHaveLength(51);
    await reopened.close();
  });
});

describe("SqliteStore", () => {
  it("opens in WAL mode, syncing each group commit at durability full, at the latest schema version", async () => {
    // SQLite syncs the WAL before checkpoints (NORMAL); the store syncs it after each group commit.
    expect(store.settings()).toEqual({ journalMode: "wal", synchronous: 1, syncEachCommit: true });
    expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    const normal = openSqliteStore(join(dir, "normal.db"), { durability: "normal" });
    expect(normal.settings()).toEqual({ journalMode: "wal", synchronous: 1, syncEachCommit: false });
    await normal.close();
    // On its own thread the store lets SQLite sync inside COMMIT instead.
    let calls = 0;
    const inCommit = openSqliteStore(join(dir, "in-commit.db"), { syncInCommit: true, syncWal: async () => void calls++ });
    expect(inCommit.settings()).toEqual({ journalMode: "wal", synchronous: 2, syncEachCommit: true });
    await inCommit.createRun(diamondRun("studio"));
    expect(calls).toBe(0);
    await inCommit.close();
    const memory = openSqliteStore(":memory:");
    expect(memory.settings().syncEachCommit).toBe(true);
    expect(memory.settings().synchronous).toBe(2);
    await memory.close();
  });

  it("at durability full, settles a write only once the WAL holding its commit is synced; writes queued meanwhile share the next sync", async () => {
    const syncs: Array<{ fd: number; release: () => void }> = [];
    const slow = openSqliteStore(join(dir, "slow.db"), {
      syncWal: (fd) => new Promise<void>((resolve) => syncs.push({ fd, release: resolve })),
    });
    let settled = 0;
    const first = slow.createRun(diamondRun("studio", "first")).then((r) => (settled++, r));
    await until(() => syncs.length === 1);
    expect(settled).toBe(0);
    // Committed (another connection reads it) but not yet acknowledged.
    const reader = new Database(join(dir, "slow.db"), { readonly: true });
    expect(reader.prepare("SELECT COUNT(*) AS n FROM runs").get()).toEqual({ n: 1 });
    // Submitted while the first sync runs: they wait, and are committed and synced together afterwards.
    const later = [slow.createRun(diamondRun("studio", "second")), slow.createRun(diamondRun("studio", "third"))];
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(reader.prepare("SELECT COUNT(*) AS n FROM runs").get()).toEqual({ n: 1 });
    syncs[0]!.release();
    expect((await first).created).toBe(true);
    await until(() => syncs.length === 2);
    expect(reader.prepare("SELECT COUNT(*) AS n FROM runs").get()).toEqual({ n: 3 });
    syncs[1]!.release();
    expect((await Promise.all(later)).map((r) => r.created)).toEqual([true, true]);
    expect(syncs).toHaveLength(2);
    reader.close();
    const closing = slow.close();
    await until(() => syncs.length === 2 || syncs.length === 3);
    syncs.slice(2).forEach((s) => s.release());
    await closing;
  });

  it("fails closed when the WAL cannot be synced: the writes it covered and every later write are refused", async () => {
    let fail = false;
    const failing = openSqliteStore(join(dir, "failing.db"), {
      syncWal: async () => {
        if (fail) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
      },
    });
    await failing.createRun(diamondRun("studio", "ok"));
    fail = true;
    await expect(failing.createRun(diamondRun("studio", "lost"))).rejects.toBeInstanceOf(StoreUnavailableError);
    fail = false;
    await expect(failing.createRun(diamondRun("studio", "after"))).rejects.toThrow(/could not sync its write-ahead log \(EIO/);
    expect((await failing.listRuns("studio")).map((r) => r.idempotencyKey)).toContain("ok");
    await failing.close();
  });

  it("names runs and attempts with time-ordered UUIDs (version 7)", async () => {
    const ids = [timeOrderedUuid(1_000), timeOrderedUuid(2_000), timeOrderedUuid(2_000)];
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids[0]! < ids[1]!).toBe(true);
    expect(ids[1]!.slice(0, 13)).toBe(ids[2]!.slice(0, 13));
    expect(ids[1]).not.toBe(ids[2]);
    const { run } = await store.createRun(diamondRun("studio"));
    const attempt = await store.markPlaced({ runId: run.id, stageId: "a", gpus: ["g"], explanation: null });
    expect(run.id[14]).toBe("7");
    expect(attempt.id[14]).toBe("7");
    expect(run.id.slice(0, 13) <= attempt.id.slice(0, 13)).toBe(true);
  });

  it("settles every queued write before closing", async () => {
    const pending = [store.createRun(diamondRun("studio", "late-1")), store.createRun(diamondRun("studio", "late-2"))];
    await store.close();
    await Promise.all(pending);
    store = openSqliteStore(join(dir, "agent.db"));
    expect((await store.listRuns("studio")).map((r) => r.idempotencyKey).sort()).toEqual(["late-1", "late-2"]);
  });
});

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(condition()).toBe(true);
}

describe("SqliteStore migrations", () => {
  it("migrates a database created by an older schema, keeping its runs", async () => {
    const file = join(dir, "old.db");
    // The store's statements are written for the latest schema, so the run is written by it and the
    // database then taken back to version 1: later migrations' indexes and columns dropped, their versions forgotten.
    const current = openSqliteStore(file);
    const { run } = await current.createRun({ ...diamondRun("studio", "before-upgrade"), submittedBy: "alice" });
    await current.close();
    const downgrade = new Database(file);
    for (const m of SQLITE_MIGRATIONS.slice(1)) {
      for (const statement of m.statements) {
        const index = /^CREATE INDEX (\w+)/.exec(statement);
        const column = /^ALTER TABLE (\w+) ADD COLUMN (\w+)/.exec(statement);
        if (index) downgrade.exec(`DROP INDEX ${index[1]}`);
        else if (column) downgrade.exec(`ALTER TABLE ${column[1]} DROP COLUMN ${column[2]}`);
        else throw new Error(`this test cannot undo migration ${m.version}: ${statement}`);
      }
      downgrade.prepare("DELETE FROM schema_migrations WHERE version = ?").run(m.version);
    }
    expect((downgrade.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number }).v).toBe(1);
    downgrade.close();

    const upgraded = openSqliteStore(file);
    expect(upgraded.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect((await upgraded.getRun("studio", run.id))!.stages).toHaveLength(4);
    // Runs stored before submitters were recorded have none (only a tenant admin may cancel them).
    expect((await upgraded.getRun("studio", run.id))!.run.submittedBy).toBeNull();
    expect((await upgraded.createRun(diamondRun("studio", "before-upgrade"))).run.id).toBe(run.id);
    await upgraded.close();

    const db = new Database(file, { readonly: true });
    const versions = db.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as Array<{ version: number }>;
    expect(versions.map((v) => v.version)).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'events_by_run'").all();
    expect(indexes).toHaveLength(1);
    db.close();
  });

  it("refuses a database written by a newer agent", () => {
    const db = new Database(join(dir, "newer.db"));
    migrate(db);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 'now')").run(LATEST_SCHEMA_VERSION + 1);
    expect(() => migrate(db)).toThrow(/version \d+ but this agent knows versions up to/);
    db.close();
  });
});
