import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LATEST_SCHEMA_VERSION, SQLITE_MIGRATIONS, migrate, openSqliteStore, type SqliteStore } from "../../runtime/agent/store/index.ts";
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

describe("SqliteStore", () => {
  it("opens in WAL mode with synchronous=FULL, at the latest schema version", async () => {
    expect(store.settings()).toEqual({ journalMode: "wal", synchronous: 2 });
    expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    const normal = openSqliteStore(join(dir, "normal.db"), { durability: "normal" });
    expect(normal.settings().synchronous).toBe(1);
    await normal.close();
  });

  it("settles every queued write before closing", async () => {
    const pending = [store.createRun(diamondRun("studio", "late-1")), store.createRun(diamondRun("studio", "late-2"))];
    await store.close();
    await Promise.all(pending);
    store = openSqliteStore(join(dir, "agent.db"));
    expect((await store.listRuns("studio")).map((r) => r.idempotencyKey).sort()).toEqual(["late-1", "late-2"]);
  });
});

describe("SqliteStore migrations", () => {
  it("migrates a database created by an older schema, keeping its runs", async () => {
    const file = join(dir, "old.db");
    const old = openSqliteStore(file, { migrations: SQLITE_MIGRATIONS.slice(0, 1) });
    expect(old.schemaVersion).toBe(1);
    const { run } = await old.createRun(diamondRun("studio", "before-upgrade"));
    await old.close();

    const upgraded = openSqliteStore(file);
    expect(upgraded.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect((await upgraded.getRun("studio", run.id))!.stages).toHaveLength(4);
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
