/** The agent's durable store: the interface, and the embedded SQLite implementation. */
export * from "./types.ts";
export { validateNewRun, validateTransition, IDEMPOTENCY_KEY } from "./validate-run.ts";
export { openSqliteStore, SqliteStore, type Durability, type SqliteStoreOptions } from "./sqlite-store.ts";
export { StoreUnavailableError } from "./errors.ts";
export { SQLITE_MIGRATIONS, LATEST_SCHEMA_VERSION, migrate, type Migration } from "./sqlite-migrations.ts";
export { timeOrderedUuid } from "./ids.ts";
export { openThreadedSqliteStore, ThreadedSqliteStore, type ThreadedStoreOptions } from "./sqlite-thread.ts";
