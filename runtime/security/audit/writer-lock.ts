import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** Paths this process holds, so a lock naming our own pid is told apart from one left by an earlier process with that pid. */
const heldHere = new Set<string>();

export class AuditLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditLockedError";
  }
}

/**
 * One writer per log: two would fork the hash chain. The lock is a file created exclusively, naming the
 * holder; a lock left by a process that is gone (same host, pid not running) is taken over.
 */
export function acquireWriterLock(dir: string): { release(): void } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, "writer.lock");
  const mine = JSON.stringify({ pid: process.pid, host: hostname() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, mine, { flag: "wx", mode: 0o600 });
      heldHere.add(path);
      return {
        release: () => {
          heldHere.delete(path);
          try {
            unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = readHolder(path);
    if (holder && !isStale(holder, path)) {
      throw new AuditLockedError(`the audit log in ${dir} is held by another writer (pid ${holder.pid} on ${holder.host}): stop it first; if it is gone, delete ${path}`);
    }
    unlinkSync(path);
  }
  throw new AuditLockedError(`could not take the audit log lock ${path}: another writer keeps taking it`);
}

function readHolder(path: string): { pid: number; host: string } | undefined {
  try {
    const holder = JSON.parse(readFileSync(path, "utf8")) as { pid?: unknown; host?: unknown };
    return typeof holder.pid === "number" && typeof holder.host === "string" ? { pid: holder.pid, host: holder.host } : undefined;
  } catch {
    return undefined; // unreadable or half-written: treated as stale
  }
}

function isStale(holder: { pid: number; host: string }, path: string): boolean {
  if (holder.host !== hostname()) return false; // another machine's process cannot be checked from here
  if (holder.pid === process.pid) return !heldHere.has(path);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}
