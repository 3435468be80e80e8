import { join } from "node:path";

/** The log file inside the audit directory. */
export const LOG_FILE = "log.jsonl";

/** Where the audit pieces live under an agent's data directory (the agent, `gpufabric dev` and the CLI agree on these). */
export function auditPaths(dataDir: string) {
  return {
    /** Holds log.jsonl. */
    logDir: join(dataDir, "audit"),
    /** The default checkpoint sink (a separate volume in a cluster). */
    checkpointsDir: join(dataDir, "audit-checkpoints"),
    /** The Ed25519 key pair; the private key is read-only to the writer. */
    signingKeyPath: join(dataDir, "audit-signing", "private.pem"),
    publicKeyPath: join(dataDir, "audit-signing", "public.pem"),
  };
}
