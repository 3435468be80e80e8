import { Option, type Command } from "commander";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadPlatformConfig } from "../../runtime/config/index.ts";
import { startAgent } from "../../runtime/agent/index.ts";
import { untilSignalled } from "../signals.ts";
import { CliError, EXIT } from "../errors.ts";

interface AgentCliOptions {
  config: string;
  dataDir?: string;
  port?: string;
  host?: string;
  inventory?: string;
  simulatedTimeScale?: string;
  logLevel?: string;
  durability?: string;
  keyCheckInterval: string;
  insecure?: boolean;
  scratchDir?: string;
  unsafeSharedIdentity?: boolean;
  maxJsonDepth?: string;
  database?: string;
  advertiseUrl?: string;
  sharedDir?: string;
  replica?: string;
  keyring?: string;
  tokens?: string;
  signingKey?: string;
  auditSink?: string;
  gpuHistoryStep?: string;
  gpuHistoryWindow?: string;
}

/** `gpufabric agent`: the container entry point. Serves until SIGTERM or SIGINT, then stops cleanly. */
export function register(program: Command): void {
  program
    .command("agent")
    .description("run the agent: schedule and run workflow stages on this node's GPUs, serve the HTTP API")
    .requiredOption("--config <file>", "platform config (JSON or YAML), e.g. the ConfigMap's platform.json")
    .addOption(new Option("--data-dir <dir>", "store, workspaces, artifacts and logs (default: the config's deployment.dataDir)").env("GPUFABRIC_DATA_DIR"))
    .option("--port <n>", "port to listen on; 0 picks a free one (default: the config's deployment.listen.port)")
    .option("--host <host>", "address to listen on (default: the config's deployment.listen.host)")
    .option("--inventory <mode>", "auto (nvidia-smi when present, else the pool's devices marked simulated), nvidia-smi or simulated; with comfyui.image, any but simulated reads the GPUs from the ComfyUI server containers", "auto")
    .option("--simulated-time-scale <x>", "multiplies the estimated durations of simulated stages", "1")
    .option("--log-level <level>", "fatal, error, warn, info, debug, trace or silent", "info")
    .addOption(
      new Option("--database <url>", "postgres://… : keep state in PostgreSQL (a cluster's control planes); default: embedded SQLite in the data directory").env(
        "GPUFABRIC_DATABASE_URL"
      )
    )
    .addOption(new Option("--advertise-url <url>", "cluster mode: where workers reach this control plane (default: the URL it listens on)").env("GPUFABRIC_ADVERTISE_URL"))
    .addOption(new Option("--shared-dir <dir>", "cluster mode: where the storage every worker mounts is mounted here (default: the config's cluster.sharedDir)").env("GPUFABRIC_SHARED_DIR"))
    .addOption(new Option("--replica <name>", "cluster mode: this control plane's name, for its audit checkpoints (default: the host name)").env("GPUFABRIC_REPLICA"))
    .option("--durability <mode>", "full: every accepted write survives power loss; normal: survives the agent's crash (kill -9), not the machine's", "full")
    .addOption(
      new Option("--scratch-dir <dir>", "where stages work before their outputs are sealed: a memory-backed folder (default: /dev/shm when it is a tmpfs, else DATA_DIR/scratch)").env(
        "GPUFABRIC_SCRATCH_DIR"
      )
    )
    .option("--insecure", "allow plain HTTP on a non-loopback address (tokens in clear text; logged loudly): a trusted network only")
    .option(
      "--unsafe-shared-identity",
      "run stages without the sandbox, as the agent's own user (they can read its keys, tokens and store; logged at error level and audited): trusted stages only"
    )
    .option("--max-json-depth <n>", "refuse request bodies whose arrays and objects nest deeper than this (default 64)")
    .option("--keyring <dir>", "the keyring Secret's folder (keyring.json, or one file per version) (default: the config's security.encryption.keyring.mountPath)")
    .option("--tokens <dir>", "the API token hashes' folder (default: the config's security.auth.tokens.mountPath)")
    .option("--signing-key <dir>", "the folder of the audit checkpoint signing key, ed25519.pem or private.pem (default: the config's security.audit.signingKey.mountPath)")
    .option("--audit-sink <dir>", "where signed audit checkpoints are exported, a folder no other agent uses (default: the config's security.audit.sink.mountPath)")
    .option("--gpu-history-step <s>", "seconds between samples of the GPUs' VRAM history the dashboard charts", "5")
    .option("--gpu-history-window <s>", "seconds of GPU VRAM history kept in memory (default 24 h)", "86400")
    .option("--key-check-interval <s>", "seconds between looks at the keyring: a new current version (keys rotate) starts a background rewrap", "10")
    .action(async (options: AgentCliOptions) => {
      if (!existsSync(options.config))
        throw new CliError(`--config: ${options.config} does not exist: pass the platform config file (the ConfigMap's platform.json)`, EXIT.usage);
      const agent = await startAgent({
        config: loadPlatformConfig(options.config),
        ...(options.dataDir !== undefined && { dataDir: resolve(options.dataDir) }),
        ...(options.port !== undefined && { port: intOption("--port", options.port) }),
        ...(options.host !== undefined && { host: options.host }),
        inventory: options.inventory as "auto",
        simulatedTimeScale: numberOption("--simulated-time-scale", options.simulatedTimeScale!),
        logLevel: options.logLevel as "info",
        durability: options.durability as "full",
        keyCheckIntervalS: numberOption("--key-check-interval", options.keyCheckInterval),
        ...(options.insecure === true && { insecure: true }),
        ...(options.scratchDir !== undefined && { scratchDir: resolve(options.scratchDir) }),
        ...(options.maxJsonDepth !== undefined && { maxJsonDepth: intOption("--max-json-depth", options.maxJsonDepth) }),
        ...(options.unsafeSharedIdentity === true && { unsafeSharedIdentity: true }),
        ...(options.database !== undefined && { database: options.database }),
        ...(options.advertiseUrl !== undefined && { advertiseUrl: options.advertiseUrl }),
        ...(options.sharedDir !== undefined && { sharedDir: resolve(options.sharedDir) }),
        ...(options.replica !== undefined && { replica: options.replica }),
        ...(options.keyring !== undefined && { keyringDir: resolve(options.keyring) }),
        ...(options.tokens !== undefined && { tokensDir: resolve(options.tokens) }),
        ...(options.signingKey !== undefined && { signingKeyDir: resolve(options.signingKey) }),
        ...(options.auditSink !== undefined && { auditSinkDir: resolve(options.auditSink) }),
        gpuHistoryStepS: numberOption("--gpu-history-step", options.gpuHistoryStep!),
        gpuHistoryWindowS: numberOption("--gpu-history-window", options.gpuHistoryWindow!),
        configFile: resolve(options.config),
      });
      await untilSignalled(async (signal) => {
        // Counted before the stop: what the next start takes up again.
        const left = { runs: agent.loop.activeRunCount, stages: agent.loop.runningStages().length };
        await agent.close();
        process.stderr.write(`${stoppedLine("gpufabric agent", signal, left)}\n`);
      });
    });
}

/** The one line a stopping agent prints: what it leaves for its next start. */
export function stoppedLine(who: string, signal: string, left: { readonly runs: number; readonly stages: number }): string {
  const runs = `${left.runs} unfinished run${left.runs === 1 ? "" : "s"} kept for the next start`;
  const stages = left.stages === 0 ? "no stage was running" : `${left.stages} running stage${left.stages === 1 ? "" : "s"} stopped (${left.stages === 1 ? "it runs" : "they run"} again then)`;
  return `${who}: stopped on ${signal}: ${runs}; ${stages}`;
}

export function intOption(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError(`${name} must be a whole number (got '${value}')`, EXIT.usage);
  return n;
}

function numberOption(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new CliError(`${name} must be a number (got '${value}')`, EXIT.usage);
  return n;
}
