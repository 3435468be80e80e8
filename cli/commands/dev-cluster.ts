/**
 * `gpufabric dev --workers N [--control-planes M] [--database URL]`: the examples on a local cluster of
 * real processes (cluster/local-cluster.ts), printing the node each stage ran on.
 *
 * `--workers auto [--max-workers N] [--scale-down-cooldown S]`: elastic. The cluster starts with no worker;
 * the local scaler starts worker processes as the demand asks (at most N) and drains them back to zero
 * once the pool has been idle for the cooldown (cluster/elastic/local-scaler.ts, local-autoscaler.ts).
 */
import { join } from "node:path";
import { pino } from "pino";
import { LocalCluster } from "../../runtime/agent/cluster/local-cluster.ts";
import { LocalAutoscaler } from "../../runtime/agent/cluster/elastic/local-autoscaler.ts";
import { LocalScaler } from "../../runtime/agent/cluster/elastic/local-scaler.ts";
import type { LocalPlatform } from "../../runtime/agent/service/local-platform.ts";
import { CliError, EXIT } from "../errors.ts";
import { intOption } from "./agent.ts";
import { followRuns, submitExamples, type RunProgress } from "./dev.ts";

/** `gpufabric dev`'s options as commander parses them (strings), the ones a local cluster reads; dev.ts's options extend them. */
export interface DevClusterOptions {
  workers?: string;
  maxWorkers?: string;
  scaleDownCooldown?: string;
  controlPlanes?: string;
  gpusPerWorker?: string;
  database?: string;
  once?: boolean;
  json?: boolean;
  unsafeSharedIdentity?: boolean;
}

export async function devCluster(
  options: DevClusterOptions,
  local: LocalPlatform,
  dataDir: string,
  timeScale: number,
  say: (line: string) => void
): Promise<void> {
  const auto = options.workers === "auto";
  const workers = auto ? 0 : intOption("--workers", options.workers!);
  const maxWorkers = auto ? intOption("--max-workers", options.maxWorkers ?? "4") : undefined;
  const cooldownS = intOption("--scale-down-cooldown", options.scaleDownCooldown ?? "30");
  const controlPlanes = intOption("--control-planes", options.controlPlanes ?? "2");
  if (!auto && (workers < 1 || workers > 64)) throw new CliError(`--workers must be 'auto' or from 1 to 64 (got ${workers})`, EXIT.usage);
  if (maxWorkers !== undefined && (maxWorkers < 1 || maxWorkers > 64)) throw new CliError(`--max-workers must be from 1 to 64 (got ${maxWorkers})`, EXIT.usage);
  if (!auto && (options.maxWorkers !== undefined || options.scaleDownCooldown !== undefined)) {
    throw new CliError("--max-workers and --scale-down-cooldown go with --workers auto: pass --workers auto, or drop them", EXIT.usage);
  }
  if (cooldownS < 0 || cooldownS > 86_400) throw new CliError(`--scale-down-cooldown must be whole seconds from 0 to 86400 (got ${cooldownS})`, EXIT.usage);
  const gpusPerWorker = intOption("--gpus-per-worker", options.gpusPerWorker ?? "2");
  if (gpusPerWorker < 1 || gpusPerWorker > 64) throw new CliError(`--gpus-per-worker must be from 1 to 64 (got ${gpusPerWorker})`, EXIT.usage);
  if (controlPlanes < 1 || controlPlanes > 9) throw new CliError(`--control-planes must be from 1 to 9 (got ${controlPlanes})`, EXIT.usage);
  say(
    `starting a local cluster: ${options.database ? "the given PostgreSQL" : "a local PostgreSQL"}, ${controlPlanes} control plane(s), ${
      auto ? `elastic workers (0 to ${maxWorkers}, scale-down after ${cooldownS} s idle)` : `${workers} worker(s)`
    } …`
  );
  const cluster = await LocalCluster.start({
    config: local.config,
    dataDir,
    workers,
    ...(maxWorkers !== undefined && { maxWorkers, scaleDownCooldownS: cooldownS }),
    controlPlanes,
    gpusPerWorker,
    ...(options.database !== undefined && { database: options.database }),
    timeScale,
    ...(options.unsafeSharedIdentity === true && { unsafeSharedIdentity: true }),
  });
  const clusterFile = cluster.writeClusterFile();
  const elastic = maxWorkers === undefined ? undefined : startElastic(cluster, maxWorkers, Object.values(local.tokens)[0]!, dataDir, say);
  const stopAll = async () => {
    await elastic?.stop();
    await cluster.stop();
  };
  const stop = () => void stopAll().then(() => process.exit(130));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const pool = cluster.config.pools.find((p) => p.name === cluster.config.deployment.pool)!;
  say(`  control planes: ${cluster.controlPlaneUrls.join(", ")}`);
  if (elastic === undefined) say(`  workers: ${cluster.processes.filter((p) => p.role === "worker").map((p) => `${p.node} (pid ${p.pid})`).join(", ")}; ${pool.gpusPerNode} simulated GPUs each`);
  else say(`  workers: none yet; up to ${maxWorkers} of ${pool.gpusPerNode} simulated GPUs each, as the queue asks`);
  say(`  processes and pids in ${clusterFile}; logs in ${dataDir}/logs`);
  say("  API tokens (shown once):");
  for (const [tenant, token] of Object.entries(local.tokens)) say(`    ${tenant}: ${token}`);
  let runs: RunProgress[];
  try {
    const target = { url: cluster.url, simulated: true, workflows: cluster.config.workflows };
    runs = await submitExamples(target, local.tokens);
    await followRuns(target, local.tokens, runs, Boolean(options.json) || !process.stdout.isTTY, say);
  } catch (err) {
    await stopAll();
    throw err;
  }
  // Elastic: the examples are done; the workers drain back to zero once the cooldown has passed.
  let drained: boolean | undefined;
  if (elastic !== undefined && options.once) drained = await elastic.untilZero((cooldownS + 30) * 1000);
  const ok = runs.every((r) => r.status === "succeeded");
  const nodesUsed = [...new Set(runs.flatMap((r) => Object.values(r.nodes ?? {})))];
  const summary = {
    ok,
    url: cluster.url,
    dataDir,
    clusterFile,
    deployment: cluster.config.deployment.name,
    nodes: nodesUsed,
    processes: cluster.processes.map(({ log: _log, ...p }) => p),
    runs,
    ...(elastic !== undefined && { elastic: { maxWorkers, scaleDownCooldownS: cooldownS, peakWorkers: elastic.peak, workersStarted: elastic.scaler.history.filter((h) => h.what === "start").length, ...(drained !== undefined && { drainedToZero: drained }) } }),
  };
  if (options.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    for (const r of runs) {
      say(`${r.status === "succeeded" ? "✓" : "✗"} ${r.workflow} (${r.tenant}) ${r.status}${r.failure ? ` (${r.failure})` : ""}`);
      for (const [stage, node] of Object.entries(r.nodes ?? {})) say(`    ${stage} ran on ${node}`);
    }
  }
  if (options.once) {
    await stopAll();
    if (!ok) throw new CliError(`${runs.filter((r) => r.status !== "succeeded").length} example run(s) did not succeed: see ${dataDir}/logs`, EXIT.failure);
    return;
  }
  say(`serving on ${cluster.controlPlaneUrls.join(", ")}; press Ctrl-C to stop`);
  await new Promise(() => undefined);
}

/** The local scaler and the follower of the leader's demand that drives it; says each change of the worker count. */
function startElastic(cluster: LocalCluster, maxWorkers: number, token: string, dataDir: string, say: (line: string) => void) {
  const pool = cluster.config.pools.find((p) => p.name === cluster.config.deployment.pool)!;
  const nodeOf = (slot: number) => `${pool.name}-n${slot}`;
  const logger = pino({ level: "info", base: { service: "gpufabric-dev-scaler" } }, pino.destination({ dest: join(dataDir, "logs", "scaler.log"), mkdir: true, sync: false }));
  let autoscaler: LocalAutoscaler | undefined;
  const scaler = new LocalScaler({ launcher: cluster, pool: pool.name, nodeOf, busy: (node) => autoscaler?.busy(node) ?? false, logger });
  autoscaler = new LocalAutoscaler({
    scaler,
    pool: pool.name,
    intervalMs: 500,
    leaderUrl: async () => (await cluster.leader().catch(() => undefined))?.url,
    token,
    logger,
  });
  autoscaler.start();
  let said = "";
  let peak = 0;
  const watch = setInterval(() => {
    const states = scaler.states();
    const up = states.filter((x) => x === "up").length;
    const starting = states.filter((x) => x === "starting").length;
    const draining = states.filter((x) => x === "draining").length;
    peak = Math.max(peak, up + starting);
    const line = `  workers: ${up} up, ${starting} starting, ${draining} draining (desired ${autoscaler?.last?.desiredWorkers ?? 0}, max ${maxWorkers})`;
    if (line !== said) say((said = line));
  }, 250);
  return {
    scaler,
    get peak() {
      return peak;
    },
    /** Resolves true once no worker runs, false after `timeoutMs`. */
    async untilZero(timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (scaler.states().every((x) => x === "free")) return true;
        await new Promise((r) => setTimeout(r, 250));
      }
      return false;
    },
    async stop(): Promise<void> {
      clearInterval(watch);
      await autoscaler?.stop();
      await scaler.close();
    },
  };
}
