/**
 * The agent's side of stage isolation: which paths stages must never see, the start-time proof that
 * the sandbox works, and the refusal to start without one (unless --unsafe-shared-identity says so,
 * which is logged at error level and recorded in the audit log).
 */
import type { Logger } from "pino";
import { ValidationError } from "../../config/errors.ts";
import type { PlatformConfig } from "../../config/schema.ts";
import { RunnerClient } from "../runner/index.ts";
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
    // A cluster's shared storage holds every run's sealed files; the workers' token hashes name them all.
    ...(config.cluster ? [config.cluster.sharedDir, config.cluster.workerTokens.mountPath] : []),
  ];
}

/** How the agent starts stages: in which sandbox (none only under --unsafe-shared-identity), and through which runner. */
export interface StageIsolation {
  readonly sandbox: StageSandbox | undefined;
  /** Set in `runner` mode: stages start in the runner's container. */
  readonly runner: RunnerClient | undefined;
}

/**
 * The sandbox stages run in, proven by a trial stage (through the runner in `runner` mode).
 * Throws a ValidationError naming the fix when stages cannot be isolated.
 */
export async function isolateStages(
  config: PlatformConfig,
  options: { unsafeSharedIdentity?: boolean | undefined; configFile?: string | undefined; runnerWaitMs?: number },
  dirs: { dataDir: string; scratchDir: string },
  audit: Pick<AuditTrail, "record">,
  logger: Logger
): Promise<StageIsolation> {
  const runnerMode = config.isolation.mode === "runner";
  let runner: RunnerClient | undefined;
  if (runnerMode) {
    try {
      runner = await RunnerClient.connect(config.isolation.runnerSocket, options.runnerWaitMs);
    } catch (err) {
      throw new ValidationError("stage isolation", [
        { field: "isolation.runnerSocket", message: `${(err as Error).message}: start \`gpufabric runner --socket ${config.isolation.runnerSocket}\` in the pod's runner container` },
      ]);
    }
    logger.info({ socket: config.isolation.runnerSocket, runnerPid: runner.hello.pid, runnerUid: runner.hello.uid }, "stages start in the runner's container, which holds no Secret");
  }
  if (options.unsafeSharedIdentity === true) {
    logger.error(
      { unsafeSharedIdentity: true, runner: runnerMode },
      runnerMode
        ? "UNSAFE: stages run in the runner's container without a sandbox (--unsafe-shared-identity): they cannot reach the agent's Secrets, but every stage sees the others' workspaces and the pod's network"
        : "UNSAFE: stages run as the agent's own user without a sandbox (--unsafe-shared-identity): any stage can read the keyring, tokens, signing key, store and audit log, and signal the agent"
    );
    await audit.record({ actor: AGENT_ACTOR, action: "isolation.disabled", object: `deployment/${config.deployment.name}`, outcome: "success", data: { unsafeSharedIdentity: true, runner: runnerMode } });
    return { sandbox: undefined, runner };
  }
  if (runner && config.isolation.sandbox === "none") {
    logger.warn(
      { sandbox: "none", runner: true },
      "stages run in the runner's container without namespaces (isolation.sandbox: none): they never see the agent's Secrets, store or audit log, but they share that container's files and the pod's network"
    );
    await audit.record({ actor: AGENT_ACTOR, action: "isolation.container-only", object: `deployment/${config.deployment.name}`, outcome: "success", data: { sandbox: "none" } });
    return { sandbox: undefined, runner };
  }
  const probe = await probeSandbox({
    isolation: config.isolation,
    tenants: config.tenants.map((t) => t.name),
    // The runner's container holds none of the agent's files (that is its point); masks for paths that
    // exist only here would name mount points bwrap cannot make there.
    protectedPaths: runnerMode ? [] : protectedPathsOf(config, { ...dirs, ...(options.configFile !== undefined && { configFile: options.configFile }) }),
    scratchDir: dirs.scratchDir,
    // The agent prepares a runner's workspaces as itself: uids of their own only where it starts stages itself.
    ...(runner && { spawner: runner, perTenantUids: false }),
  });
  if (!probe.ok) {
    runner?.close();
    throw new ValidationError("stage isolation", [
      {
        field: "isolation",
        message: runnerMode
          ? `stages cannot be sandboxed in the runner's container: ${probe.reason}. Pods that may not create user namespaces cannot run bubblewrap: set WorkflowDeployment's stageSandbox: "container" (isolation.sandbox: none; stages still never see the agent's Secrets), or start the agent with --unsafe-shared-identity`
          : `stages cannot be isolated: ${probe.reason}. To run every stage as the agent's own user anyway (trusted stages only), start with --unsafe-shared-identity`,
      },
    ]);
  }
  logger.info(
    { identity: probe.identity, uidRangeStart: config.isolation.uidRangeStart, allowEgress: config.isolation.allowEgress },
    probe.identity === "per-tenant" ? "stages run sandboxed, each tenant as its own uid" : "stages run sandboxed as the agent's uid (it may not change users): namespaces keep them apart"
  );
  return { sandbox: probe.sandbox, runner };
}
