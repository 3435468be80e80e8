/**
 * The folders an agent owns while it runs: its data directory and the checkpoint folder its audit log exports
 * to. Two agents on one data directory would share a store and an audit log; two on one checkpoint folder
 * would interleave two logs' checkpoints, which `audit verify` then reports as tampering. So each agent claims
 * both at start, and a folder another agent holds is refused with the holder and the fix.
 *
 * The claim is an OS lock held for the process's life: an exclusive SQLite transaction on an empty file
 * (`agent.lock`), which is an fcntl lock underneath. The kernel drops it when the process ends, however it ends
 * (kill -9 included), so a crashed agent never blocks the next start, and no pid or start-time guess can be
 * fooled by a reused pid. SQLite also sees the lock across connections of one process. Who holds it is written
 * beside it (`agent.lock.json`) for the message only; it is never trusted to decide.
 */
import Database from "better-sqlite3";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";

export const LOCK_FILE = "agent.lock";
const HOLDER_FILE = "agent.lock.json";

/** Secrets and volumes given as options (`--keyring` …), which take the place of the config's mount paths. */
export interface MountOverrides {
  readonly keyringDir?: string | undefined;
  readonly tokensDir?: string | undefined;
  readonly signingKeyDir?: string | undefined;
  readonly auditSinkDir?: string | undefined;
}

/** The config with the mount paths the options name; stages are kept away from these paths as from the config's. */
export function withMountOverrides(config: PlatformConfig, o: MountOverrides): PlatformConfig {
  const s = config.security;
  return {
    ...config,
    security: {
      ...s,
      auth: o.tokensDir === undefined ? s.auth : { ...s.auth, tokens: { ...s.auth.tokens, mountPath: o.tokensDir } },
      encryption: o.keyringDir === undefined ? s.encryption : { ...s.encryption, keyring: { ...s.encryption.keyring, mountPath: o.keyringDir } },
      audit: {
        ...s.audit,
        signingKey: o.signingKeyDir === undefined ? s.audit.signingKey : { ...s.audit.signingKey, mountPath: o.signingKeyDir },
        sink: o.auditSinkDir === undefined ? s.audit.sink : { ...s.audit.sink, mountPath: o.auditSinkDir },
      },
    },
  };
}

export interface Holder {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  readonly dataDir: string;
}

/** What another agent holds (BUSY), or the folder the lock could not be taken in for another reason. */
export type LockAttempt = { readonly ok: true; readonly release: () => void } | { readonly ok: false; readonly busy: true; readonly holder: Holder | undefined } | { readonly ok: false; readonly busy: false; readonly error: Error };

/** Tries to claim `dir` for this process, never waiting; `dataDir`: the holder's, noted for others' messages (absent: a probe, noting nothing). */
export function tryLockDirectory(dir: string, dataDir?: string): LockAttempt {
  let db: Database.Database;
  try {
    db = new Database(join(dir, LOCK_FILE), { timeout: 0 });
  } catch (err) {
    return { ok: false, busy: false, error: err as Error };
  }
  try {
    // Nothing is ever written to the file: the transaction is only the lock.
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") return { ok: false, busy: true, holder: readHolder(dir) };
    return { ok: false, busy: false, error: err as Error };
  }
  if (dataDir !== undefined) noteHolder(dir, dataDir);
  let released = false;
  return {
    ok: true,
    release: () => {
      if (released) return;
      released = true;
      db.close(); // closing ends the transaction and drops the lock
    },
  };
}

function noteHolder(dir: string, dataDir: string): void {
  try {
    const holder: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), dataDir };
    writeFileSync(join(dir, `${HOLDER_FILE}.tmp`), `${JSON.stringify(holder)}\n`, { mode: 0o600 });
    renameSync(join(dir, `${HOLDER_FILE}.tmp`), join(dir, HOLDER_FILE));
  } catch {
    // The note is for messages only; the lock stands without it.
  }
}

/** Who holds `dir`'s lock, as its holder wrote it (undefined when unreadable). */
export function readHolder(dir: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(join(dir, HOLDER_FILE), "utf8")) as Partial<Holder>;
    return typeof h.pid === "number" && typeof h.host === "string" ? { pid: h.pid, host: h.host, since: String(h.since ?? "?"), dataDir: String(h.dataDir ?? "?") } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether an agent holds `dir` now (false when no agent ever ran there). Takes and drops the lock to find out. */
export function heldByAnAgent(dir: string): { held: false } | { held: true; holder: Holder | undefined } {
  if (!existsSync(join(dir, LOCK_FILE))) return { held: false };
  const attempt = tryLockDirectory(dir);
  if (attempt.ok) {
    attempt.release();
    return { held: false };
  }
  return attempt.busy ? { held: true, holder: attempt.holder } : { held: false };
}

export function describeHolder(holder: Holder | undefined): string {
  return holder === undefined ? "another agent" : `another agent (pid ${holder.pid} on ${holder.host}, since ${holder.since})`;
}

/**
 * Claims the data directory and the checkpoint folder (`sinkDir`, when it exists: the security checks name a
 * missing one), or throws naming the holder and the fix. A filesystem without locks is logged and not claimed.
 */
export function lockAgentDirectories(dataDir: string, sink: { readonly mountPath: string; readonly replica: string | undefined }, logger: Logger): { release(): void } {
  const held: Array<() => void> = [];
  const release = () => held.splice(0).reverse().forEach((r) => r());
  const claim = (dir: string, refused: (holder: Holder | undefined) => ValidationError) => {
    const attempt = tryLockDirectory(dir, dataDir);
    if (attempt.ok) return void held.push(attempt.release);
    if (!attempt.busy) {
      logger.warn({ dir, err: attempt.error }, `${dir} could not be locked (a filesystem without locks?): nothing stops a second agent from using it too`);
      return;
    }
    release();
    throw refused(attempt.holder);
  };
  claim(dataDir, (holder) =>
    new ValidationError("agent options", [
      { field: "dataDir", message: `the data directory ${dataDir} is in use by ${describeHolder(holder)}: stop that agent first, or give this one a data directory of its own (--data-dir)` },
    ])
  );
  // A control plane of a cluster exports to a folder of its own in the sink (see openAgentSecurity).
  const sinkDir = sink.replica === undefined ? sink.mountPath : join(sink.mountPath, sink.replica);
  if (sink.replica !== undefined && isDirectory(sink.mountPath)) mkdirSync(sinkDir, { recursive: true, mode: 0o700 });
  if (isDirectory(sinkDir))
    claim(sinkDir, (holder) =>
      new ValidationError("platform config", [
        {
          field: "security.audit.sink.mountPath",
          message: `the checkpoint folder ${sinkDir} is in use by ${describeHolder(holder)}${holder ? ` with the data directory ${holder.dataDir}` : ""}: each agent's audit log needs a checkpoint folder of its own (two logs' checkpoints in one folder read as tampering): pass --audit-sink DIR, or mount another volume there`,
        },
      ])
    );
  return { release };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
