/**
 * Which store an agent opens: the embedded SQLite database in its data directory (single node, the
 * default), or a PostgreSQL database shared by the control planes of a cluster (`--database postgres://…`).
 */
import { join } from "node:path";
import { ValidationError } from "../../config/errors.ts";
import { openPgStore } from "./pg-store.ts";
import { SCHEMA_NAME } from "./pg/connection.ts";
import type { Durability } from "./sqlite-store.ts";
import { openThreadedSqliteStore } from "./sqlite-thread.ts";
import type { Store } from "./types.ts";

export type StoreLocation =
  | { readonly kind: "sqlite"; readonly file: string }
  /** `url` without the `schema` parameter, which names the store's schema instead. */
  | { readonly kind: "postgres"; readonly url: string; readonly schema: string };

/** The SQLite file's name in the data directory. */
export const SQLITE_FILE = "agent.db";

/**
 * `database`: absent for the embedded store, or a `postgres://` / `postgresql://` URL, optionally with
 * `?schema=NAME` (default `public`). Errors name the option and never echo the URL (it may hold a password).
 */
export function parseDatabase(database: string | undefined, dataDir: string): StoreLocation {
  if (database === undefined || database === "") return { kind: "sqlite", file: join(dataDir, SQLITE_FILE) };
  const refuse = (message: string) => new ValidationError("agent options", [{ field: "database", message }]);
  // Not WHATWG's URL parser: libpq's socket form (postgres://user@/db?host=/run/postgresql) has no host.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1];
  if (scheme === undefined) throw refuse("must be a PostgreSQL URL such as postgres://user@host:5432/gpufabric?sslmode=verify-full");
  if (scheme !== "postgres" && scheme !== "postgresql") {
    throw refuse(`must be a postgres:// or postgresql:// URL (got a ${scheme}:// URL); leave it out to use the embedded SQLite store`);
  }
  const q = database.indexOf("?");
  const base = q === -1 ? database : database.slice(0, q);
  const params = new URLSearchParams(q === -1 ? "" : database.slice(q + 1));
  const schema = params.get("schema") ?? "public";
  if (!SCHEMA_NAME.test(schema)) {
    throw refuse(`its schema parameter must be a lowercase PostgreSQL identifier (letters, digits, underscores; at most 63), got '${schema}'`);
  }
  params.delete("schema");
  const rest = params.toString();
  return { kind: "postgres", url: rest === "" ? base : `${base}?${rest}`, schema };
}

export interface OpenStoreOptions {
  /** The SQLite store's durability (PostgreSQL commits are always synchronous). */
  readonly durability?: Durability;
  /** The PostgreSQL store's connection pool size. */
  readonly maxConnections?: number;
}

export async function openStore(location: StoreLocation, options: OpenStoreOptions = {}): Promise<Store> {
  if (location.kind === "sqlite") return openThreadedSqliteStore(location.file, { durability: options.durability ?? "full" });
  return openPgStore(location.url, {
    schema: location.schema,
    ...(options.maxConnections !== undefined && { maxConnections: options.maxConnections }),
  });
}
