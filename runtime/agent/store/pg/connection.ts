/**
 * Connections of the PostgreSQL store: a pool whose every session has the settings the store relies on,
 * and the transaction helper each operation runs in.
 *
 * Every session:
 *  - uses the store's schema (search_path), so several stores (or tests) can share one database;
 *  - commits with synchronous_commit=on whatever the server's default: a write settles only once its
 *    commit record is flushed to the server's disk (and, with synchronous standbys configured, to them);
 *  - reads timestamps in UTC, returned as ISO 8601 strings like the SQLite store's.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { StoreUnavailableError } from "../errors.ts";

/** What an operation queries through: a transaction's connection, or the pool for a lone read. */
export type Tx = Pick<pg.PoolClient, "query">;

/** A schema name the store interpolates into SQL: checked, never quoted from user input. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const TIMESTAMPTZ = 1184;
const INT8 = 20;
const parseTimestamp = pg.types.getTypeParser(TIMESTAMPTZ) as (value: string) => Date;

/** Timestamps as ISO strings, and bigints (event ids, counts, artifact sizes) as numbers: all stay below 2^53. */
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === TIMESTAMPTZ) return (value: string) => parseTimestamp(value).toISOString();
    if (oid === INT8) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PoolOptions {
  readonly schema: string;
  /** Connections held at most (default 10). */
  readonly maxConnections?: number;
}

/** The session settings, sent once on each new connection before its first statement. */
const initialized = new WeakMap<pg.Pool, { readonly sql: string; readonly clients: WeakSet<pg.PoolClient> }>();

export function createPool(url: string, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    types,
    // A dead server fails a call within seconds instead of hanging it.
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection that breaks (the server restarted) is dropped by the pool and replaced on the next
  // call; without a listener the error would end the process.
  pool.on("error", () => undefined);
  // Not the startup `options` parameter: an `options` in the URL would replace it whole.
  initialized.set(pool, { sql: `SET search_path TO ${options.schema}; SET synchronous_commit TO on; SET TimeZone TO 'UTC'`, clients: new WeakSet() });
  return pool;
}

/** A pooled connection with the store's session settings; a StoreUnavailableError when none can be had. */
async function acquire(pool: pg.Pool): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw unavailable(err);
  }
  const init = initialized.get(pool)!;
  if (!init.clients.has(client)) {
    try {
      await client.query(init.sql);
    } catch (err) {
      client.release(err as Error);
      throw isUnavailable(err) ? unavailable(err) : err;
    }
    init.clients.add(client);
  }
  return client;
}

const names = new Map<string, pg.QueryConfig>();

/**
 * A statement by name: each connection parses and plans it once, then only binds and executes it (a large
 * share of a small statement's server time on a busy control plane). The name is derived from the text.
 */
export function named(text: string): pg.QueryConfig {
  let config = names.get(text);
  if (config === undefined) {
    config = { name: `gpufabric_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`, text };
    names.set(text, config);
  }
  return config;
}

/** SQLSTATE classes and codes after which the statement may be retried on a fresh transaction. */
const RETRYABLE = new Set(["40001", "40P01"]);
/** The server is gone or going (shut down, restarting, unreachable). */
const UNAVAILABLE_CLASSES = ["08", "57P"];
const UNAVAILABLE_NODE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ENOENT", "ETIMEDOUT"]);

export function isUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_NODE_CODES.has(code) || UNAVAILABLE_CLASSES.some((c) => code.startsWith(c)))) return true;
  const message = err instanceof Error ? err.message : "";
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message);
}

/** What the caller sees when the server cannot be reached: a StoreUnavailableError naming the cause. */
export function unavailable(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(
    `the PostgreSQL store cannot reach its database (${(err as Error).message}): the call may or may not have been applied; retry it (submissions with an idempotency key are safe to retry)`,
    { cause: err }
  );
}

/** A single statement outside an explicit transaction (a read of one query), with lost connections reported as such. */
export async function once<T>(pool: pg.Pool, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const client = await acquire(pool);
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    if (isUnavailable(err)) {
      broken = err as Error;
      throw unavailable(err);
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

export type Isolation = "read committed" | "repeatable read";

/**
 * Runs `fn` in one transaction on a pooled connection: committed when it returns, rolled back when it
 * throws. A deadlock or serialization failure is retried a few times on a fresh transaction (no
 * statement of the failed one took effect); a lost connection becomes a StoreUnavailableError.
 */
export async function transaction<T>(pool: pg.Pool, fn: (tx: Tx) => Promise<T>, isolation: Isolation = "read committed", readOnly = false): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await acquire(pool);
    let broken: unknown;
    try {
      await client.query(`BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}${readOnly ? " READ ONLY" : ""}`);
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      if (isUnavailable(err)) {
        broken = err;
        throw unavailable(err);
      }
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError;
      });
      const code = (err as { code?: unknown }).code;
      if (typeof code === "string" && RETRYABLE.has(code) && attempt < 5) continue;
      throw err;
    } finally {
      // A connection that failed mid-transaction is destroyed, not returned to the pool.
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : new Error(String(broken)));
    }
  }
}
