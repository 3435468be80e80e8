/**
 * The data directory and the store are private to the agent's user: the directory 0700, agent.db and
 * its -wal and -shm files 0600. SQLite gives the -wal and -shm files the database file's own mode, so
 * the database file is made (empty, which SQLite takes as a new database) with 0600 before the store
 * opens it.
 */
import { chmodSync, closeSync, constants, mkdirSync, openSync, statSync } from "node:fs";
import type { Logger } from "pino";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` with mode 0700, or tightens an existing one that others or the group can enter. Where the
 * mode cannot be changed (a volume root owned by someone else), a warning says so and the agent goes on:
 * the files inside are still private.
 */
export function ensurePrivateDirectory(dir: string, logger: Logger): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  tighten(dir, PRIVATE_DIR_MODE, logger, "the data directory");
}

/** Makes the store's files private: creates `dbFile` with 0600 when it is missing and tightens what exists of it, its -wal and its -shm. */
export function ensurePrivateStoreFiles(dbFile: string, logger: Logger): void {
  try {
    // O_EXCL: only a missing file is made; an existing database is never touched beyond its mode.
    closeSync(openSync(dbFile, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, PRIVATE_FILE_MODE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) tighten(file, PRIVATE_FILE_MODE, logger, "a store file");
}

function tighten(path: string, mode: number, logger: Logger, what: string): void {
  let current: number;
  try {
    current = statSync(path).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if ((current & ~mode) === 0) return;
  const from = current.toString(8).padStart(4, "0");
  const to = mode.toString(8).padStart(4, "0");
  try {
    chmodSync(path, mode);
    logger.warn({ path, from, to }, `${what} was open to other users (mode ${from}): tightened to ${to}`);
  } catch (err) {
    logger.warn({ err, path, mode: from }, `${what} is open to other users (mode ${from}) and could not be tightened: run 'chmod ${to.slice(1)} ${path}'`);
  }
}
