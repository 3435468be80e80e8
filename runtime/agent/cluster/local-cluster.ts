/**
 * A cluster on one machine (`gpufabric dev --workers N --control-planes M`): a real PostgreSQL (a throwaway
 * local server unless a URL is given), M control-plane processes and N worker processes, each worker a
 * "node" of the pool with simulated GPUs of its own. Every process is a real `gpufabric` process that an
 * operator or a test can kill: `<data-dir>/cluster.json` lists them.
 *
 * The shared storage of a real cluster (a ReadWriteMany volume) is a folder of the data directory here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { PlatformConfig } from "../../config/schema.ts";
import { parsePlatformConfig } from "../../config/index.ts";
import { packageRoot } from "../../config/package.ts";
import { generateToken } from "../../security/identity/index.ts";
import pg from "pg";
import { parseDatabase } from "../store/open.ts";
import { SCHEDULER_LEASE, WORKER_TOKEN_FILE } from "./control-plane.ts";
import { startLocalPostgres, type LocalPostgres } from "./local-postgres.ts";

/** Every member process started here and still running. */
const members = new Set<ChildProcess>();
let killOnExit = false;
// From the package root, not this module: it runs from runtime/ (sources) or dist/runtime/ (the build).
const BIN = join(packageRoot(), "bin", "gpufabric.mjs");

export interface LocalClusterOptions {
  /** A local platform config (localPlatform): loopback, no TLS, files under `dataDir`. */
  readonly config: PlatformConfig;
  readonly dataDir: string;
  /** Workers started with the cluster (0 with `maxWorkers`: a scaler starts them). */
  readonly workers: number;
  /**
   * Elastic (`gpufabric dev --workers auto`): the pool has this many nodes and tokens, of which `workers`
   * start now; startWorker and stopWorker (the local scaler) bring the others up and down.
   */
  readonly maxWorkers?: number;
  /**
   * With `maxWorkers`: seconds of idle surplus before the leader's demand controller lets workers go
   * (cluster.elasticity.scaleDownCooldownSeconds; default 30).
   */
  readonly scaleDownCooldownS?: number;
  readonly controlPlanes: number;
  /** An existing PostgreSQL; default: a throwaway local server. */
  readonly database?: string;
  /** Simulated GPUs per worker (default: the pool's GPUs per node). */
  readonly gpusPerWorker?: number;
  /**
   * The node names the workers give, in order (default: the pool's nodes). A name the pool lacks is
   * bound to a free node at registration, as a Kubernetes node's name would be.
   */
  readonly workerNodes?: readonly string[];
  readonly timeScale?: number;
  readonly workerLeaseMs?: number;
  readonly leaderLeaseMs?: number;
  readonly unsafeSharedIdentity?: boolean;
  /** Extra environment of every process. */
  readonly env?: Readonly<Record<string, string>>;
  /** Node options of the control planes (e.g. --cpu-prof, to profile them). */
  readonly controlPlaneExecArgv?: readonly string[];
}

export interface ClusterProcess {
  readonly role: "control-plane" | "worker";
  readonly name: string;
  readonly pid: number;
  /** A worker's node. */
  readonly node?: string;
  /** A control plane's URL. */
  readonly url?: string;
  readonly log: string;
}

/** What `<data-dir>/cluster.json` holds. */
export interface ClusterFile {
  readonly url: string;
  /** The database URL, without a password. */
  readonly database: string;
  readonly processes: ReadonlyArray<{ role: "control-plane" | "worker"; pid: number; node?: string; url?: string; name: string }>;
}

interface Member {
  info: ClusterProcess;
  child: ChildProcess;
  readonly args: string[];
  out: WriteStream;
}

/** The config of a local cluster: the deployment's pool reshaped to `workers` nodes, leases, local paths. */
export function clusterPlatform(
  config: PlatformConfig,
  o: Pick<LocalClusterOptions, "dataDir" | "workers" | "maxWorkers" | "scaleDownCooldownS" | "controlPlanes" | "gpusPerWorker" | "workerLeaseMs" | "leaderLeaseMs">
): PlatformConfig {
  const pool = config.pools.find((p) => p.name === config.deployment.pool)!;
  const perNode = o.gpusPerWorker ?? pool.gpusPerNode;
  const memoryMiB = pool.devices[0]?.memoryMiB ?? pool.gpu.memoryMiB;
  const nodes = o.maxWorkers ?? o.workers;
  const devices = Array.from({ length: nodes * perNode }, (_, i) => {
    const node = `${pool.name}-n${Math.floor(i / perNode)}`;
    return { id: `${node}-g${i % perNode}`, node, index: i % perNode, memoryMiB };
  });
  return parsePlatformConfig(
    {
      ...config,
      pools: config.pools.map((p) => (p.name === pool.name ? { ...p, nodes, gpusPerNode: perNode, devices } : p)),
      cluster: {
        controlPlaneReplicas: o.controlPlanes,
        leaderLeaseMs: o.leaderLeaseMs ?? 3000,
        workerLeaseMs: o.workerLeaseMs ?? 5000,
        sharedDir: join(o.dataDir, "shared"),
        // A server on this machine, reached over its unix socket.
        databaseSslMode: "disable",
        workerTokens: { mountPath: join(o.dataDir, "worker-tokens") },
        // Elastic: the leader's demand controller publishes the count (provider none) and the local scaler
        // of `gpufabric dev` follows it, as KEDA would; a local stage asks for a worker at once.
        ...(o.maxWorkers !== undefined && {
          elasticity: {
            enabled: true,
            minWorkers: 0,
            maxWorkers: o.maxWorkers,
            scaleDownCooldownSeconds: o.scaleDownCooldownS ?? 30,
            batchScaleUpDelaySeconds: 0,
            intervalSeconds: 0.5,
            provider: { type: "none" },
          },
        }),
      },
    },
    "local cluster config"
  );
}

export class LocalCluster {
  private readonly members: Member[] = [];
  /** The control planes' URLs, which every worker is given. */
  private urls: string[] = [];
  private postgres: LocalPostgres | undefined;
  private stopped = false;

  private constructor(
    readonly config: PlatformConfig,
    readonly configFile: string,
    readonly database: string,
    private readonly o: LocalClusterOptions
  ) {}

  static async start(o: LocalClusterOptions): Promise<LocalCluster> {
    const elastic = o.maxWorkers !== undefined;
    if (elastic && (!Number.isInteger(o.maxWorkers) || o.maxWorkers! < 1 || o.maxWorkers! > 64)) throw new RangeError("--max-workers must be a whole number from 1 to 64");
    if (!Number.isInteger(o.workers) || o.workers < (elastic ? 0 : 1) || o.workers > (o.maxWorkers ?? 64)) {
      throw new RangeError(elastic ? "the workers started at first must be from 0 to --max-workers" : "--workers must be a whole number from 1 to 64");
    }
    if (!Number.isInteger(o.controlPlanes) || o.controlPlanes < 1 || o.controlPlanes > 9) throw new RangeError("--control-planes must be a whole number from 1 to 9");
    const config = clusterPlatform(o.config, o);
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const configFile = join(o.dataDir, "cluster-platform.json");
    writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
    mkdirSync(config.cluster!.sharedDir, { recursive: true, mode: 0o700 });
    let postgres: LocalPostgres | undefined;
    let database = o.database;
    if (database === undefined) {
      const started = await startLocalPostgres();
      if ("unavailable" in started) throw new Error(`no PostgreSQL for the local cluster: ${started.unavailable}; or pass --database postgres://…`);
      postgres = started;
      database = started.url;
    }
    const cluster = new LocalCluster(config, configFile, database, o);
    cluster.postgres = postgres;
    try {
      await cluster.launch();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  get processes(): ClusterProcess[] {
    return this.members.map((m) => m.info);
  }

  get controlPlaneUrls(): string[] {
    return this.members.filter((m) => m.info.role === "control-plane").map((m) => m.info.url!);
  }

  get url(): string {
    return this.controlPlaneUrls[0]!;
  }

  /** The local PostgreSQL server (absent when a URL was given). */
  get server(): LocalPostgres | undefined {
    return this.postgres;
  }

  /** The control plane holding the scheduler lease now, by the lease row's holder; undefined while none does. */
  async leader(): Promise<ClusterProcess | undefined> {
    const where = parseDatabase(this.database, this.o.dataDir);
    if (where.kind !== "postgres") return undefined;
    const c = new pg.Client({ connectionString: where.url });
    await c.connect();
    try {
      await c.query(`SET search_path TO ${where.schema}`);
      const { rows } = await c.query<{ holder: string | null }>(`SELECT holder FROM leader_lease WHERE name = $1 AND holder IS NOT NULL AND expires_at > clock_timestamp()`, [SCHEDULER_LEASE]);
      const url = rows[0]?.holder?.split(" ")[0];
      return url === undefined ? undefined : this.processes.find((p) => p.role === "control-plane" && p.url === url);
    } finally {
      await c.end();
    }
  }

  /** Writes `<data-dir>/cluster.json`. */
  writeClusterFile(): string {
    const file: ClusterFile = {
      url: this.url,
      database: this.database.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@"),
      processes: this.members.map((m) => ({ role: m.info.role, name: m.info.name, pid: m.info.pid, ...(m.info.node && { node: m.info.node }), ...(m.info.url && { url: m.info.url }) })),
    };
    const path = join(this.o.dataDir, "cluster.json");
    writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
    return path;
  }

  /** Sends a signal to one member by name (e.g. `worker-1`, `control-plane-0`). */
  signal(name: string, signal: NodeJS.Signals): void {
    const m = this.members.find((x) => x.info.name === name);
    if (m === undefined) throw new Error(`no member ${name}`);
    m.child.kill(signal);
  }

  /** Starts a member that was stopped or killed again, with its former arguments; resolves once it is up. */
  async restart(name: string): Promise<ClusterProcess> {
    const m = this.members.find((x) => x.info.name === name);
    if (m === undefined) throw new Error(`no member ${name}`);
    if (m.child.exitCode === null && m.child.signalCode === null) {
      const exited = new Promise((r) => m.child.once("exit", r));
      m.child.kill("SIGKILL");
      await exited;
    }
    // A control plane comes back on its former port: the workers know it by that URL (a Service's, in a real cluster).
    const port = m.info.url === undefined ? undefined : new URL(m.info.url).port;
    const args = port === undefined ? m.args : m.args.map((a, i) => (m.args[i - 1] === "--port" ? port : a));
    const fresh = await this.spawnMember(m.info.role, m.info.name, args, m.info.node);
    Object.assign(m, { info: fresh.info, child: fresh.child });
    this.writeClusterFile();
    return m.info;
  }

  /** Stops every process (SIGTERM, then SIGKILL after 10 s) and the local server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Workers first: their attempts end while the control planes can still hear of it.
    for (const role of ["worker", "control-plane"] as const) {
      await Promise.all(
        this.members
          .filter((m) => m.info.role === role)
          .map(async (m) => {
            if (m.child.exitCode !== null || m.child.signalCode !== null) return;
            const exited = new Promise((r) => m.child.once("exit", r));
            // A worker drains on SIGTERM (its stages run to their end): SIGINT stops it at once.
            m.child.kill(role === "worker" ? "SIGINT" : "SIGTERM");
            const timer = setTimeout(() => m.child.kill("SIGKILL"), 10_000);
            await exited;
            clearTimeout(timer);
          })
      );
    }
    for (const m of this.members) m.out.end();
    await this.postgres?.stop();
  }

  private async launch(): Promise<void> {
    const cluster = this.config.cluster!;
    const common = ["--config", this.configFile, "--log-level", "info"];
    // The workers' token hashes are where the control planes look for them from their start.
    const tokenLines: string[] = [];
    for (let i = 0; i < this.slots; i++) {
      const token = generateToken(`worker-${i}`);
      tokenLines.push(token.line);
      const dir = join(this.o.dataDir, "workers", `worker-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, "token"), `${token.token}\n`, { mode: 0o600 });
    }
    mkdirSync(cluster.workerTokens.mountPath, { recursive: true, mode: 0o700 });
    writeFileSync(join(cluster.workerTokens.mountPath, WORKER_TOKEN_FILE), `# generated by gpufabric dev; replaced on every start\n${tokenLines.join("\n")}\n`, { mode: 0o600 });
    const planes = await Promise.all(
      Array.from({ length: this.o.controlPlanes }, (_, i) =>
        this.spawnMember("control-plane", `control-plane-${i}`, [
          "agent",
          ...common,
          "--data-dir",
          join(this.o.dataDir, `control-plane-${i}`),
          "--host",
          "127.0.0.1",
          "--port",
          "0",
          "--database",
          this.database,
          "--replica",
          `control-plane-${i}`,
        ])
      )
    );
    this.urls = planes.map((p) => p.info.url!);
    await Promise.all(Array.from({ length: this.o.workers }, (_, i) => this.spawnWorker(i)));
    this.writeClusterFile();
  }

  /** Worker slots: the pool's nodes (`maxWorkers`, or `workers` for a fixed cluster). */
  get slots(): number {
    return this.o.maxWorkers ?? this.o.workers;
  }

  /**
   * Starts the worker of slot `slot` (`worker-<slot>`, node `<pool>-n<slot>`); resolves once it registered,
   * with a promise of its exit. Used by the local scaler; a slot's worker runs at most once at a time.
   */
  async startWorker(slot: number): Promise<{ info: ClusterProcess; exited: Promise<number | null> }> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new RangeError(`no worker slot ${slot} (0 to ${this.slots - 1})`);
    if (this.stopped) throw new Error("the local cluster is stopping");
    const m = await this.spawnWorker(slot);
    const child = m.child;
    const exited = new Promise<number | null>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
      else child.once("exit", (code) => resolve(code));
    });
    this.writeClusterFile();
    return { info: m.info, exited };
  }

  private spawnWorker(i: number): Promise<Member> {
    const pool = this.config.pools.find((p) => p.name === this.config.deployment.pool)!;
    const nodes = [...new Set(pool.devices.map((d) => d.node))];
    const dir = join(this.o.dataDir, "workers", `worker-${i}`);
    return this.spawnMember(
      "worker",
      `worker-${i}`,
      [
        "worker",
        "--config",
        this.configFile,
        "--log-level",
        "info",
        ...this.urls.flatMap((u) => ["--control-plane", u]),
        "--token-file",
        join(dir, "token"),
        "--node",
        this.o.workerNodes?.[i] ?? nodes[i]!,
        "--data-dir",
        dir,
        "--inventory",
        "simulated",
        "--gpus",
        String(pool.gpusPerNode),
        "--simulated-time-scale",
        String(this.o.timeScale ?? 1),
        ...(this.o.unsafeSharedIdentity ? ["--unsafe-shared-identity"] : []),
      ],
      this.o.workerNodes?.[i] ?? nodes[i]
    );
  }

  private async spawnMember(role: "control-plane" | "worker", name: string, args: string[], node?: string): Promise<Member> {
    const log = join(this.o.dataDir, "logs", `${name}.log`);
    mkdirSync(join(this.o.dataDir, "logs"), { recursive: true });
    const out = createWriteStream(log, { flags: "a" });
    const execArgv = role === "control-plane" ? (this.o.controlPlaneExecArgv ?? []) : [];
    const child = spawn(process.execPath, [...execArgv, BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...this.o.env } });
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    let seen = "";
    const ready = role === "control-plane" ? /"url":"(https?:\/\/[^"]+)"[^\n]*"msg":"agent listening"/ : /"msg":"worker registered"/;
    const url = await new Promise<string | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s: see ${log}\n${seen.slice(-2000)}`)), 60_000);
      const onData = (chunk: Buffer) => {
        seen = (seen + chunk.toString()).slice(-20_000);
        const m = ready.exec(seen);
        if (m) {
          clearTimeout(timer);
          child.stdout!.off("data", onData);
          child.stderr!.off("data", onData);
          resolve(m[1]);
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (${code ?? signal}) before it was up: see ${log}\n${seen.slice(-2000)}`));
      });
    });
    // Members never outlive the process that started them, however it ends short of SIGKILL.
    if (!killOnExit) {
      killOnExit = true;
      process.once("exit", () => members.forEach((c) => c.kill("SIGKILL")));
    }
    members.add(child);
    child.once("exit", () => members.delete(child));
    const info: ClusterProcess = { role, name, pid: child.pid!, log, ...(node !== undefined && { node }), ...(url !== undefined && { url }) };
    const existing = this.members.find((m) => m.info.name === name);
    const member: Member = existing ?? { info, child, args, out };
    if (existing === undefined) this.members.push(member);
    else {
      // A slot's worker started again (the local scaler): its former log stream is done with.
      if (existing.out !== out) existing.out.end();
      Object.assign(existing, { info, child, out });
    }
    return member;
  }
}
