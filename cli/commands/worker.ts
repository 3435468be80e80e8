import { Option, type Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pino } from "pino";
import { loadPlatformConfig } from "../../runtime/config/index.ts";
import { WorkerNode } from "../../runtime/agent/cluster/worker.ts";
import { CliError, EXIT } from "../errors.ts";
import { intOption } from "./agent.ts";

interface WorkerCliOptions {
  config: string;
  controlPlane: string[];
  tokenFile: string;
  caFile?: string;
  node?: string;
  dataDir: string;
  scratchDir?: string;
  sharedDir?: string;
  inventory: string;
  gpus?: string;
  simulatedTimeScale: string;
  logLevel: string;
  unsafeSharedIdentity?: boolean;
}

/**
 * `gpufabric worker`: one per GPU node of a cluster. Runs the stages the leading control plane places on
 * this node's GPUs, in the sandbox; talks only to the control plane, with its own token. SIGTERM drains it
 * (no new stages, the running ones finish and are reported, then it exits 0: how a scale-down or a node
 * going away ends a worker); SIGINT, or a second SIGTERM, stops it at once (its attempts end interrupted
 * and run again elsewhere, as after SIGKILL).
 */
export function register(program: Command): void {
  program
    .command("worker")
    .description("run a cluster's stages on this node's GPUs, as the leading control plane assigns them")
    .requiredOption("--config <file>", "platform config (JSON or YAML) with a cluster section, e.g. the ConfigMap's platform.json")
    .addOption(
      new Option("--control-plane <url...>", "the control plane's URL (a Service), or each replica's; the worker finds the leader").env("GPUFABRIC_CONTROL_PLANE").makeOptionMandatory()
    )
    .addOption(new Option("--token-file <file>", "file holding this worker's token (gf_…)").env("GPUFABRIC_WORKER_TOKEN_FILE").makeOptionMandatory())
    .option("--ca-file <file>", "CA certificate the control plane's TLS certificate is checked against")
    .addOption(new Option("--node <name>", "this node's name (default: the host name)").env("GPUFABRIC_NODE_NAME"))
    .addOption(new Option("--data-dir <dir>", "the worker's local state and scratch").env("GPUFABRIC_DATA_DIR").default("/var/lib/gpufabric-worker"))
    .addOption(new Option("--scratch-dir <dir>", "where stages work (default: /dev/shm when it is a tmpfs)").env("GPUFABRIC_SCRATCH_DIR"))
    .addOption(new Option("--shared-dir <dir>", "where the storage every worker mounts is mounted here (default: the config's cluster.sharedDir)").env("GPUFABRIC_SHARED_DIR"))
    .option("--inventory <mode>", "auto (nvidia-smi when present, else simulated GPUs), nvidia-smi or simulated", "auto")
    .option("--gpus <n>", "simulated GPUs on this node (default: the pool's GPUs per node)")
    .option("--simulated-time-scale <x>", "multiplies the estimated durations of simulated stages", "1")
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent", "info")
    .option("--unsafe-shared-identity", "run stages without the sandbox, as the worker's own user: trusted stages only")
    .action(async (options: WorkerCliOptions) => {
      if (!existsSync(options.config)) throw new CliError(`--config: ${options.config} does not exist: pass the platform config file`, EXIT.usage);
      let token: string;
      try {
        token = readFileSync(options.tokenFile, "utf8").trim();
      } catch (err) {
        throw new CliError(`--token-file: ${options.tokenFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount the worker's token there`, EXIT.usage);
      }
      const logger = pino({ level: options.logLevel, base: { service: "gpufabric-worker" } });
      const config = loadPlatformConfig(options.config);
      if (config.cluster === null) throw new CliError("--config: the platform config has no cluster section: a worker serves a cluster's control planes", EXIT.usage);
      const worker = await WorkerNode.start({
        config,
        controlPlanes: options.controlPlane.flatMap((u) => u.split(",")).filter((u) => u !== ""),
        token,
        ...(options.caFile !== undefined && { ca: readFileSync(options.caFile) }),
        ...(options.node !== undefined && { node: options.node }),
        dataDir: resolve(options.dataDir),
        ...(options.scratchDir !== undefined && { scratchDir: resolve(options.scratchDir) }),
        ...(options.sharedDir !== undefined && { sharedDir: resolve(options.sharedDir) }),
        inventory: options.inventory as "auto",
        ...(options.gpus !== undefined && { simulatedGpus: intOption("--gpus", options.gpus) }),
        simulatedTimeScale: Number(options.simulatedTimeScale),
        ...(options.unsafeSharedIdentity === true && { unsafeSharedIdentity: true }),
        configFile: resolve(options.config),
        logger,
      });
      await untilDrainedOrStopped(worker);
    });
}

/** Resolves once the worker drained (first SIGTERM) or stopped (SIGINT, or SIGTERM while draining). */
export function untilDrainedOrStopped(worker: Pick<WorkerNode, "drain" | "stop">): Promise<void> {
  return new Promise((done) => {
    let draining = false;
    const stopNow = () => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", stopNow);
      void worker.stop().then(done);
    };
    const onTerm = () => {
      if (draining) return stopNow();
      draining = true;
      void worker.drain().then(() => {
        process.off("SIGTERM", onTerm);
        process.off("SIGINT", stopNow);
        done();
      });
    };
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", stopNow);
  });
}
