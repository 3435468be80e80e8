import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { openStore, parseDatabase } from "../../runtime/agent/store/index.ts";
import { diamondRun } from "./fixtures/runs.ts";

describe("parseDatabase: which store --database selects", () => {
  it("is the embedded SQLite file in the data directory without it", () => {
    expect(parseDatabase(undefined, "/data")).toEqual({ kind: "sqlite", file: "/data/agent.db" });
    expect(parseDatabase("", "/data")).toEqual({ kind: "sqlite", file: "/data/agent.db" });
  });

  it("is PostgreSQL for a postgres:// or postgresql:// URL, its schema taken out of the URL", () => {
    expect(parseDatabase("postgres://cp:secret@db.internal:5432/gpufabric?sslmode=verify-full&schema=prod", "/data")).toEqual({
      kind: "postgres",
      url: "postgres://cp:secret@db.internal:5432/gpufabric?sslmode=verify-full",
      schema: "prod",
    });
    expect(parseDatabase("postgresql://cp@db/gpufabric", "/data")).toEqual({ kind: "postgres", url: "postgresql://cp@db/gpufabric", schema: "public" });
    // libpq's unix-socket form has no host in the authority.
    expect(parseDatabase("postgres://cp@/gpufabric?host=/run/postgresql&schema=a_1", "/data")).toEqual({
      kind: "postgres",
      url: "postgres://cp@/gpufabric?host=%2Frun%2Fpostgresql",
      schema: "a_1",
    });
  });

  it("refuses anything else, naming the field and never echoing the URL (it may hold a password)", () => {
    for (const [bad, message] of [
      ["mysql://u:hunter2@db/x", /postgres:\/\/ or postgresql:\/\/ URL \(got a mysql:\/\/ URL\)/],
      ["hunter2-not-a-url", /must be a PostgreSQL URL/],
      ["mysql:/u:hunter2@db", /must be a PostgreSQL URL/],
      ["postgres://u:hunter2@db/x?schema=Bad-Name", /schema parameter must be a lowercase PostgreSQL identifier/],
    ] as const) {
      const err = (() => {
        try {
          parseDatabase(bad, "/data");
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues[0]!.field).toBe("database");
      expect((err as ValidationError).message).toMatch(message);
      expect((err as ValidationError).message).not.toMatch(/hunter2/);
    }
  });

  it("opens the embedded store on its thread for the SQLite location", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-open-"));
    try {
      const store = await openStore(parseDatabase(undefined, dir), { durability: "normal" });
      expect((await store.createRun(diamondRun("studio"))).created).toBe(true);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
