/**
 * The agent's keyring and audit log, opened from the platform config. Both are required: the agent does
 * not start without a keyring, a checkpoint signing key and a checkpoint sink, and says which config field
 * points at what is missing.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import { AuditLog, auditPaths, AuditTailError, CheckpointSinkConflictError, DirectoryCheckpointSink, LOG_FILE, SigningKeyError, AuditLockedError } from "../../security/audit/index.ts";
import { FileKeyring, KeyringError } from "../../security/crypto/index.ts";

export interface AgentSecurity {
  readonly keyring: FileKeyring;
  readonly audit: AuditLog;
  /** Where checkpoints are exported. */
  readonly sinkDir: string;
}

/** File names a mounted Secret may use: the README's `kubectl create secret` names first, then what `gpufabric dev` writes. */
const KEYRING_FILE = "keyring.json";
export const SIGNING_KEY_FILES = ["ed25519.pem", "private.pem"] as const;

/** A keyring Secret mounted as a directory holding `keyring.json`, or a keyring in the directory layout. */
export function keyringLocation(mountPath: string): string {
  const file = join(mountPath, KEYRING_FILE);
  return existsSync(file) ? file : mountPath;
}

export function openKeyring(config: Pick<PlatformConfig, "security">): FileKeyring {
  const mountPath = config.security.encryption.keyring.mountPath;
  try {
    return FileKeyring.open(keyringLocation(mountPath));
  } catch (err) {
    if (!(err instanceof KeyringError)) throw err;
    throw new ValidationError("platform config", [
      {
        field: "security.encryption.keyring.mountPath",
        message: `${err.message} (the agent encrypts every artifact and sensitive field and does not start without a keyring: mount the keyring Secret there, or use 'gpufabric dev')`,
      },
    ]);
  }
}

/**
 * `replica`: in cluster mode, each control plane keeps an audit chain of its own, and exports its
 * checkpoints to a folder of its own in the shared sink (`<sink>/<replica>/`), so replicas never collide.
 */
export async function openAgentSecurity(config: PlatformConfig, dataDir: string, logger: Logger, replica?: string): Promise<AgentSecurity> {
  const keyring = openKeyring(config);
  const audit = config.security.audit;
  const keyDir = audit.signingKey.mountPath;
  const signingKeyPath = SIGNING_KEY_FILES.map((name) => join(keyDir, name)).find((path) => existsSync(path));
  if (signingKeyPath === undefined) {
    throw new ValidationError("platform config", [
      {
        field: "security.audit.signingKey.mountPath",
        message: `no Ed25519 checkpoint signing key (${SIGNING_KEY_FILES.join(" or ")}) in ${keyDir}: mount the audit-signing Secret there, or use 'gpufabric dev' (the agent does not start without an audit log)`,
      },
    ]);
  }
  let sinkDir = audit.sink.mountPath;
  if (!isDirectory(sinkDir)) {
    throw new ValidationError("platform config", [
      {
        field: "security.audit.sink.mountPath",
        message: `${sinkDir} is not a directory: mount the audit checkpoint volume there (signed checkpoints are exported to it; the agent does not start without one)`,
      },
    ]);
  }
  if (replica !== undefined) {
    sinkDir = join(sinkDir, replica);
    mkdirSync(sinkDir, { recursive: true, mode: 0o700 });
  }
  const logDir = auditPaths(dataDir).logDir;
  try {
    const log = await AuditLog.open({
      dir: logDir,
      signingKeyPath,
      sink: new DirectoryCheckpointSink(sinkDir),
      checkpointEvery: audit.checkpointEvery,
      checkpointIntervalMs: audit.checkpointIntervalSeconds * 1000,
      onBackgroundError: (error) => logger.error({ err: error }, "AUDIT LOG UNAVAILABLE: a checkpoint failed; mutating requests are refused (503) until the agent restarts with a working log and sink"),
    });
    const tail = log.unsealedTail;
    if (tail) {
      // Verified against the chain and the sink's latest checkpoint before it was signed; recorded in the log too.
      logger.warn({ ...tail }, `the last session ended without sealing the audit log (a crash or kill): ${tail.entries} entries followed its last checkpoint; verified, sealed and recorded as audit.unsealed-tail`);
    }
    return { keyring, audit: log, sinkDir };
  } catch (err) {
    // The log contradicts its chain or the exported checkpoints: refuse to start rather than sign over it.
    if (err instanceof AuditTailError) throw new ValidationError("audit log", [{ field: join(logDir, LOG_FILE), message: err.message }]);
    if (err instanceof CheckpointSinkConflictError) throw new ValidationError("platform config", [{ field: "security.audit.sink.mountPath", message: err.message }]);
    if (err instanceof SigningKeyError) throw new ValidationError("platform config", [{ field: "security.audit.signingKey.mountPath", message: err.message }]);
    if (err instanceof AuditLockedError) throw new ValidationError("agent options", [{ field: "dataDir", message: err.message }]);
    throw err;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
