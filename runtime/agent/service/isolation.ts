/**
 * The agent's side of stage isolation: which paths stages must never see, the start-time proof that
 * the sandbox works, and the refusal to start without one (unless --unsafe-shared-identity says so,
 * which is logged at error level and recorded in the audit log).
 */
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import { probeSandbox, type StageSandbox } from "../sandbox/index.ts";
import { AGENT_ACTOR, type AuditTrail } from "./audit-trail.ts";

/** Everything of the agent's that a stage must not see: its state, its scratch area, every secret mount, the config. */
export function protectedPathsOf(config: PlatformConfig, dirs: { dataDir: string; scratchDir: string; configFile?: string }): string[] {
  const security = config.security;
  return [
    dirs.dataDir,
    dirs.scratchDir,
    config.deployment.dataDir,
    security.auth.tokens.mountPath,
    security.encryption.keyring.mountPath,
    security.audit.signingKey.mountPath,
    security.audit.sink.mountPath,
    ...(security.tls.certificate ? [security.tls.certificate.mountPath] : []),
    ...(security.tls.clientCa ? [security.tls.clientCa.mountPath] : []),
    ...(dirs.configFile ? [dirs.configFile] : []),
  ];
}

/**
 * The sandbox stages run in, proven by a trial stage; undefined only under `unsafeSharedIdentity`.
 * Throws a ValidationError naming the fix when stages cannot be isolated.
 */
export async function isolateStages(
  config: PlatformConfig,
  options: { unsafeSharedIdentity?: boolean | undefined; configFile?: string | undefined },
  dirs: { dataDir: string; scratchDir: string },
  audit: AuditTrail,
  logger: Logger
): Promise<StageSandbox | undefined> {
  if (options.unsafeSharedIdentity === true) {
    logger.error(
      { unsafeSharedIdentity: true },
      "UNSAFE: stages run as the agent's own user without a sandbox (--unsafe-shared-identity): any stage can read the keyring, tokens, signing key, store and audit log, and signal the agent"
    );
    await audit.record({ actor: AGENT_ACTOR, action: "isolation.disabled", object: `deployment/${config.deployment.name}`, outcome: "success", data: { unsafeSharedIdentity: true } });
    return undefined;
  }
  if (config.isolation.mode === "runner") {
    throw new ValidationError("agent options", [
      { field: "isolation.mode", message: "'runner' stages are started by `gpufabric runner` in a container of their own; this agent process starts them itself: use 'bubblewrap' here" },
    ]);
  }
  const probe = await probeSandbox({
    isolation: config.isolation,
    tenants: config.tenants.map((t) => t.name),
    protectedPaths: protectedPathsOf(config, { ...dirs, ...(options.configFile !== undefined && { configFile: options.configFile }) }),
    scratchDir: dirs.scratchDir,
  });
  if (!probe.ok) {
    throw new ValidationError("stage isolation", [
      { field: "isolation", message: `stages cannot be isolated: ${probe.reason}. To run every stage as the agent's own user anyway (trusted stages only), start with --unsafe-shared-identity` },
    ]);
  }
  logger.info(
    { identity: probe.identity, uidRangeStart: config.isolation.uidRangeStart, allowEgress: config.isolation.allowEgress },
    probe.identity === "per-tenant" ? "stages run sandboxed, each tenant as its own uid" : "stages run sandboxed as the agent's uid (it may not change users): namespaces keep them apart"
  );
  return probe.sandbox;
}
