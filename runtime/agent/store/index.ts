/** The agent's durable store: the interface, the embedded SQLite implementation, and the PostgreSQL one for clusters. */
export * from "./types.ts";
export { validateNewRun, validateTransition, IDEMPOTENCY_KEY } from "./validate-run.ts";
export { openSqliteStore, SqliteStore, type Durability, type SqliteStoreOptions } from "./sqlite-store.ts";
export { StoreUnavailableError } from "./errors.ts";
export { SQLITE_MIGRATIONS, LATEST_SCHEMA_VERSION, migrate, type Migration } from "./sqlite-migrations.ts";
export { timeOrderedUuid } from "./ids.ts";
export { openThreadedSqliteStore, ThreadedSqliteStore, type ThreadedStoreOptions } from "./sqlite-thread.ts";
export { openPgStore, PgStore, type PgStoreOptions } from "./pg-store.ts";
export { PG_MIGRATIONS, PG_LATEST_SCHEMA_VERSION } from "./pg/migrations.ts";
export type { ClaimOptions, HeartbeatResult } from "./pg/leases.ts";
export type { Wakeups } from "./pg/wakeups.ts";
export type { Wake } from "./pg/sql.ts";
export { openStore, parseDatabase, SQLITE_FILE, type OpenStoreOptions, type StoreLocation } from "./open.ts";
