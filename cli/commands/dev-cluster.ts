/**
 * `gpufabric dev --workers N [--control-planes M] [--database URL]`: the examples on a local cluster of
 * real processes (cluster/local-cluster.ts), printing the node each stage ran on.
 */
import { LocalCluster } from "../../runtime/agent/cluster/local-cluster.ts";
import type { LocalPlatform } from "../../runtime/agent/service/local-platform.ts";
import { CliError, EXIT } from "../errors.ts";
import { intOption } from "./agent.ts";
import { followRuns, submitExamples, type RunProgress } from "./dev.ts";

export async function devCluster(
  options: { workers?: string; controlPlanes?: string; gpusPerWorker?: string; database?: string; once?: boolean; json?: boolean; unsafeSharedIdentity?: boolean },
  local: LocalPlatform,
  dataDir: string,
  timeScale: number,
  say: (line: string) => void
): Promise<void> {
  const workers = intOption("--workers", options.workers!);
  const controlPlanes = intOption("--control-planes", options.controlPlanes ?? "2");
  if (workers < 1 || workers > 64) throw new CliError(`--workers must be from 1 to 64 (got ${workers})`, EXIT.usage);
  const gpusPerWorker = intOption("--gpus-per-worker", options.gpusPerWorker ?? "2");
  if (gpusPerWorker < 1 || gpusPerWorker > 64) throw new CliError(`--gpus-per-worker must be from 1 to 64 (got ${gpusPerWorker})`, EXIT.usage);
  if (controlPlanes < 1 || controlPlanes > 9) throw new CliError(`--control-planes must be from 1 to 9 (got ${controlPlanes})`, EXIT.usage);
  say(`starting a local cluster: ${options.database ? "the given PostgreSQL" : "a local PostgreSQL"}, ${controlPlanes} control plane(s), ${workers} worker(s) …`);
  const cluster = await LocalCluster.start({
    config: local.config,
    dataDir,
    workers,
    controlPlanes,
    gpusPerWorker,
    ...(options.database !== undefined && { database: options.database }),
    timeScale,
    ...(options.unsafeSharedIdentity === true && { unsafeSharedIdentity: true }),
  });
  const clusterFile = cluster.writeClusterFile();
  const stop = () => void cluster.stop().then(() => process.exit(130));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const pool = cluster.config.pools.find((p) => p.name === cluster.config.deployment.pool)!;
  say(`  control planes: ${cluster.controlPlaneUrls.join(", ")}`);
  say(`  workers: ${cluster.processes.filter((p) => p.role === "worker").map((p) => `${p.node} (pid ${p.pid})`).join(", ")}; ${pool.gpusPerNode} simulated GPUs each`);
  say(`  processes and pids in ${clusterFile}; logs in ${dataDir}/logs`);
  say("  API tokens (shown once):");
  for (const [tenant, token] of Object.entries(local.tokens)) say(`    ${tenant}: ${token}`);
  let runs: RunProgress[];
  try {
    const target = { url: cluster.url, simulated: true, workflows: cluster.config.workflows };
    runs = await submitExamples(target, local.tokens);
    await followRuns(target, local.tokens, runs, Boolean(options.json) || !process.stdout.isTTY, say);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  const ok = runs.every((r) => r.status === "succeeded");
  const nodesUsed = [...new Set(runs.flatMap((r) => Object.values(r.nodes ?? {})))];
  const summary = { ok, url: cluster.url, dataDir, clusterFile, deployment: cluster.config.deployment.name, nodes: nodesUsed, processes: cluster.processes.map(({ log: _log, ...p }) => p), runs };
  if (options.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    for (const r of runs) {
      say(`${r.status === "succeeded" ? "✓" : "✗"} ${r.workflow} (${r.tenant}) ${r.status}${r.failure ? ` (${r.failure})` : ""}`);
      for (const [stage, node] of Object.entries(r.nodes ?? {})) say(`    ${stage} ran on ${node}`);
    }
  }
  if (options.once) {
    await cluster.stop();
    if (!ok) throw new CliError(`${runs.filter((r) => r.status !== "succeeded").length} example run(s) did not succeed: see ${dataDir}/logs`, EXIT.failure);
    return;
  }
  say(`serving on ${cluster.controlPlaneUrls.join(", ")}; press Ctrl-C to stop`);
  await new Promise(() => undefined);
}
