/**
 * The admin page's data: the tenant's audit log entries with the chain's verify status and its last
 * checkpoint (GET /v1/audit), and the keyring's versions, never their key material (GET /v1/keyring).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { auditPaths, loadSigningKey } from "../../../security/audit/index.ts";
import { FileKeyring } from "../../../security/crypto/index.ts";
import { readAuditPage, verifyAuditChain } from "../../service/audit-reader.ts";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";

/** The names the agent reads its signing key under (service/security.ts). */
const SIGNING_KEY_FILES = ["ed25519.pem", "private.pem"] as const;

export function registerAdminRoutes(app: FastifyInstance, parts: HttpParts): void {
  const logDir = auditPaths(parts.dataDir).logDir;
  // In cluster mode each replica exports to a folder of its own name under the sink: without that name
  // here, the chain is verified against the checkpoints signed into the log only.
  const checkpointsDir = parts.config.cluster === null ? parts.config.security.audit.sink.mountPath : undefined;
  let publicKey: KeyObject | undefined;
  const verifyKey = (): KeyObject => {
    if (publicKey) return publicKey;
    const dir = parts.config.security.audit.signingKey.mountPath;
    const file = SIGNING_KEY_FILES.map((name) => join(dir, name)).find((path) => existsSync(path));
    if (file === undefined) throw new ApiError(503, "audit-key-unavailable", `the audit signing key is no longer in ${dir}: the chain cannot be verified`);
    publicKey = createPublicKey(loadSigningKey(file));
    return publicKey;
  };

  app.get("/v1/audit", async (request) => {
    const { query } = parseRequest(request, "GET /v1/audit");
    const page = await readAuditPage(logDir, request.identity!.tenant, query.limit, query.before ?? null);
    const verify = await verifyAuditChain(logDir, verifyKey(), checkpointsDir);
    return { entries: page.entries, nextBefore: page.nextBefore, verify, lastCheckpoint: page.lastCheckpoint };
  });

  app.get("/v1/keyring", async (request) => {
    parseRequest(request, "GET /v1/keyring");
    const keys = parts.keys;
    const [versions, current] = await Promise.all([keys.versions(), keys.currentVersion()]);
    return {
      versions: await Promise.all(
        versions.map(async (version) => ({
          version,
          createdAt: await createdAt(keys, version),
          // A retired version is removed from the keyring (FileKeyring.retire): every version listed is live.
          retired: false,
          active: version === current,
        }))
      ),
    };
  });
}

/** When a version's key file was written: a directory keyring holds one file per version. */
async function createdAt(keys: HttpParts["keys"], version: number): Promise<string | null> {
  if (!(keys instanceof FileKeyring) || keys.layout !== "directory") return null;
  try {
    return (await stat(join(keys.path, `v${version}`))).mtime.toISOString();
  } catch {
    return null;
  }
}
