/**
 * One ComfyUI server per GPU: started from `comfyui.command` (argv, no shell, `{port}` and `{gpu}`
 * filled in) and started again with backoff whenever it exits, attached to `comfyui.servers` URLs, or,
 * with `comfyui.image`, attached to the deployment's server containers (GPU i's on portRange.from + i;
 * the kubelet restarts them).
 * A server is ready once it answers `GET /system_stats`. Each (re)start begins a new generation:
 * its introspection cache is emptied and nothing is resident on it any more.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "pino";
import { ValidationError } from "../../../config/errors.ts";
import type { ComfyUiConfig } from "../../../config/schema.ts";
import { ComfyClient } from "./client.ts";
import type { ComfyIntrospection } from "./contract.ts";

export interface PoolGpu {
  /** The GPU's id as the scheduler names it. */
  readonly id: string;
  /** Its CUDA index on this machine: `{gpu}` in the command. */
  readonly index: number;
  readonly memoryMiB?: number;
  /** Other names `comfyui.servers[].gpu` may give it (a worker's `<node>-g<index>`, as it names itself). */
  readonly aliases?: readonly string[];
}

/**
 * Which configured server serves each GPU of this machine: an entry's `gpu` names a GPU by its id, by
 * one of its aliases, or, as digits alone, by its CUDA index (so that a config shared by every worker
 * can attach each one to the servers beside it). Entries naming no GPU here belong to other machines.
 */
export function attachedServers(servers: NonNullable<ComfyUiConfig["servers"]>, gpus: readonly PoolGpu[]): Map<string, { gpu: PoolGpu; url: string }> {
  const out = new Map<string, { gpu: PoolGpu; url: string; entry: number }>();
  servers.forEach((s, entry) => {
    const gpu = gpus.find((g) => g.id === s.gpu || g.aliases?.includes(s.gpu) || (/^\d+$/.test(s.gpu) && g.index === Number(s.gpu)));
    if (gpu === undefined) return;
    const before = out.get(gpu.id);
    if (before !== undefined) {
      throw new ValidationError("platform config", [
        { field: `comfyui.servers[${entry}].gpu`, message: `'${s.gpu}' names GPU ${gpu.id} (CUDA index ${gpu.index}), which servers[${before.entry}] ('${servers[before.entry]!.gpu}') names already: one server per GPU` },
      ]);
    }
    out.set(gpu.id, { gpu, url: s.url, entry });
  });
  return out;
}

export interface ServerPoolOptions {
  readonly config: ComfyUiConfig;
  readonly gpus: readonly PoolGpu[];
  readonly logger?: Logger;
  /** Where the command's environment comes from (default: the agent's); only a few basic variables pass. */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  /** First pause before a server that exited is started again (default 500 ms), doubling up to maxBackoffMs. */
  readonly backoffMs?: number;
  readonly maxBackoffMs?: number;
}

/** Variables a ComfyUI server may need; the agent's tokens and keys never reach it. */
const PASSED_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "CONDA_PREFIX", "LD_LIBRARY_PATH", "CUDA_HOME", "HF_HOME"];
const PROBE_INTERVAL_MS = 200;
const KILL_GRACE_MS = 5_000;
/** A server that ran this long before it exited starts again without waiting out a long backoff. */
const STABLE_MS = 60_000;
const TAIL_BYTES = 2_000;

/** One GPU's server, as the executor uses it. */
export class ComfyServer {
  readonly client: ComfyClient;
  /** Goes up by one at every (re)start: what was resident or cached belongs to one generation. */
  generation = 0;
  private up = false;
  private waiters: Array<() => void> = [];
  private objectInfoCache: Promise<Record<string, unknown>> | undefined;
  private modelsCache: Promise<Record<string, readonly string[]>> | undefined;
  /** Why it last stopped, for messages. */
  lastExit = "";

  constructor(
    readonly gpu: PoolGpu,
    readonly url: string,
    readonly startTimeoutMs: number
  ) {
    this.client = new ComfyClient(url);
  }

  get ready(): boolean {
    return this.up;
  }

  /** Resolves true once the server is ready, false when it was not within `timeoutMs`. */
  whenReady(timeoutMs = this.startTimeoutMs): Promise<boolean> {
    if (this.up) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      // A wait left behind by a cancelled attempt must not keep a stopping process alive.
      timer.unref();
      this.waiters.push(done);
    });
  }

  /** `/object_info`, read once per generation. */
  objectInfo(): Promise<Record<string, unknown>> {
    const generation = this.generation;
    const read = (this.objectInfoCache ??= this.client.objectInfo());
    // A failed read is not kept: the next caller asks again.
    read.catch(() => {
      if (this.generation === generation && this.objectInfoCache === read) this.objectInfoCache = undefined;
    });
    return read;
  }

  /** Model files by folder (`/models`, then `/models/{folder}`), read once per generation. */
  models(): Promise<Record<string, readonly string[]>> {
    const generation = this.generation;
    const read = (this.modelsCache ??= (async () => {
      const folders = await this.client.modelFolders();
      const out: Record<string, readonly string[]> = {};
      for (const f of folders) out[f] = await this.client.modelsIn(f).catch(() => []);
      return out;
    })());
    read.catch(() => {
      if (this.generation === generation && this.modelsCache === read) this.modelsCache = undefined;
    });
    return read;
  }

  /** @internal the pool's: the server answered after a (re)start: a new generation begins. */
  markUp(): void {
    if (this.up) return;
    this.generation++;
    this.up = true;
    for (const w of this.waiters.splice(0)) w();
  }

  /** @internal the pool's: the server stopped; what it held is gone. */
  markDown(why: string): void {
    this.up = false;
    this.lastExit = why;
    this.objectInfoCache = undefined;
    this.modelsCache = undefined;
  }
}

export class ComfyServerPool {
  readonly servers: ReadonlyMap<string, ComfyServer>;
  private readonly processes = new Map<string, ChildProcess>();
  private readonly probes = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly exits = new Set<Promise<void>>();

  constructor(private readonly o: ServerPoolOptions) {
    const c = o.config;
    const servers = new Map<string, ComfyServer>();
    if (c.servers !== undefined) {
      // A server for a GPU this machine does not have serves nothing here.
      for (const [id, s] of attachedServers(c.servers, o.gpus)) servers.set(id, new ComfyServer(s.gpu, s.url, c.startTimeoutMs));
    } else if (c.image !== undefined) {
      // The deployment's server containers: GPU i (as the servers' inventory numbers them) is served on from + i.
      for (const gpu of o.gpus) {
        if (gpu.index > c.portRange.to - c.portRange.from) {
          throw new Error(`comfyui.portRange ${c.portRange.from}-${c.portRange.to} has no port for GPU ${gpu.id} (index ${gpu.index}): with comfyui.image it names exactly one port per server container`);
        }
        servers.set(gpu.id, new ComfyServer(gpu, `http://127.0.0.1:${c.portRange.from + gpu.index}`, c.startTimeoutMs));
      }
    } else if (c.command !== undefined) {
      const ports = c.portRange.to - c.portRange.from + 1;
      if (o.gpus.length > ports) {
        throw new Error(`comfyui.portRange ${c.portRange.from}-${c.portRange.to} has ${ports} ports for ${o.gpus.length} GPUs: widen it to one port per GPU`);
      }
      o.gpus.forEach((gpu, i) => servers.set(gpu.id, new ComfyServer(gpu, `http://127.0.0.1:${c.portRange.from + i}`, c.startTimeoutMs)));
    }
    this.servers = servers;
  }

  /** The server of a GPU: by id, else (a worker's GPUs are known by index before the leader names them) by CUDA index. */
  serverFor(gpu: { readonly id: string; readonly index?: number }): ComfyServer | undefined {
    const byId = this.servers.get(gpu.id);
    if (byId !== undefined || gpu.index === undefined) return byId;
    return [...this.servers.values()].find((s) => s.gpu.index === gpu.index);
  }

  /** The process id (and process group) of the server this pool started for a GPU, while it runs. */
  processOf(gpuId: string): number | undefined {
    return this.processes.get(gpuId)?.pid;
  }

  /** Starts every server (command mode) or begins watching them (attached, or the image's containers); returns at once. */
  start(): void {
    // Servers live in process groups of their own: they must not outlive the agent when it exits without stop().
    process.once("exit", this.killAll);
    for (const server of this.servers.values()) {
      if (this.o.config.command !== undefined) this.launch(server, this.o.backoffMs ?? 500);
      else this.watchAttached(server);
    }
  }

  /**
   * A server seen to fail mid-prompt: an attached one is probed until it answers again; a started one is
   * left to its process (its exit restarts it), but is no longer counted ready until it answers.
   */
  suspect(server: ComfyServer, why: string): void {
    if (this.stopped || !server.ready) return;
    server.client
      .systemStats()
      .then(() => undefined)
      .catch(() => {
        if (!server.ready) return;
        server.markDown(why);
        if (this.o.config.command === undefined) this.watchAttached(server);
        else this.probeUntilUp(server, () => this.processes.has(server.gpu.id));
      });
  }

  /** Stops probing and ends every server process this pool started (its whole process group). */
  async stop(): Promise<void> {
    this.stopped = true;
    process.off("exit", this.killAll);
    for (const t of this.probes) clearTimeout(t);
    this.probes.clear();
    for (const [id, child] of this.processes) {
      const server = this.servers.get(id);
      server?.markDown("the pool was stopped");
      signalGroup(child, "SIGTERM");
      const kill = setTimeout(() => signalGroup(child, "SIGKILL"), KILL_GRACE_MS);
      kill.unref();
    }
    await Promise.allSettled([...this.exits]);
  }

  /** What the servers offer: only what every server that has answered offers (a stage may land on any of them). */
  readonly introspection: ComfyIntrospection = {
    objectInfo: async () => {
      const infos = await this.fromReadyServers((s) => s.objectInfo());
      if (infos.length === 0) return null;
      const [first, ...rest] = infos;
      return Object.fromEntries(Object.entries(first!).filter(([name]) => rest.every((i) => name in i)));
    },
    models: async () => {
      const all = await this.fromReadyServers((s) => s.models());
      if (all.length === 0) return null;
      const [first, ...rest] = all;
      const out: Record<string, readonly string[]> = {};
      for (const [folder, files] of Object.entries(first!)) out[folder] = files.filter((f) => rest.every((m) => m[folder]?.includes(f)));
      return out;
    },
  };

  private readonly killAll = (): void => {
    for (const child of this.processes.values()) signalGroup(child, "SIGKILL");
  };

  private async fromReadyServers<T>(read: (s: ComfyServer) => Promise<T>): Promise<T[]> {
    const results = await Promise.allSettled([...this.servers.values()].filter((s) => s.ready).map(read));
    return results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  }

  private launch(server: ComfyServer, backoffMs: number): void {
    if (this.stopped) return;
    const c = this.o.config;
    const port = new URL(server.url).port;
    const argv = c.command!.map((a) => a.replaceAll("{port}", port).replaceAll("{gpu}", String(server.gpu.index)));
    const base = this.o.baseEnv ?? process.env;
    const env: Record<string, string> = {};
    for (const k of PASSED_ENV) if (base[k] !== undefined) env[k] = base[k]!;
    const startedAt = Date.now();
    let tail = "";
    const keep = (chunk: Buffer) => (tail = (tail + chunk.toString("utf8")).slice(-TAIL_BYTES));
    let child: ChildProcess;
    try {
      // Its own process group, so that stopping it takes whatever it started too.
      // stdin stays open as a pipe: a server that watches it can tell when the agent is gone.
      child = spawn(argv[0]!, argv.slice(1), { cwd: c.workingDir, env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    } catch (err) {
      this.o.logger?.error({ gpu: server.gpu.id, err: (err as Error).message }, "the ComfyUI server could not be started");
      this.relaunchLater(server, backoffMs, `could not be started: ${(err as Error).message}`);
      return;
    }
    this.processes.set(server.gpu.id, child);
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let settled!: () => void;
    const exited = new Promise<void>((resolve) => (settled = resolve));
    this.exits.add(exited);
    let ended = false;
    const end = (why: string) => {
      if (ended) return;
      ended = true;
      if (this.processes.get(server.gpu.id) === child) this.processes.delete(server.gpu.id);
      // Whatever it started in its group goes with it.
      signalGroup(child, "SIGKILL");
      const detail = tail.trim().split("\n").slice(-3).join(" | ");
      server.markDown(`${why}${detail ? `: ${detail}` : ""}`);
      this.exits.delete(exited);
      settled();
      if (this.stopped) return;
      this.o.logger?.warn({ gpu: server.gpu.id, why, tail: detail }, "the ComfyUI server stopped; starting it again");
      this.relaunchLater(server, Date.now() - startedAt > STABLE_MS ? (this.o.backoffMs ?? 500) : backoffMs, why);
    };
    child.on("error", (err) => end(`could not be started: ${err.message}`));
    child.on("exit", (code, signal) => end(signal ? `exited on ${signal}` : `exited with code ${code}`));
    this.o.logger?.info({ gpu: server.gpu.id, server: server.url, program: argv[0] }, "starting a ComfyUI server");
    const deadline = startedAt + c.startTimeoutMs;
    this.probeUntilUp(server, () => this.processes.get(server.gpu.id) === child, () => {
      if (Date.now() < deadline) return false;
      this.o.logger?.error({ gpu: server.gpu.id, startTimeoutMs: c.startTimeoutMs }, "the ComfyUI server did not answer /system_stats in time; restarting it");
      signalGroup(child, "SIGKILL");
      return true;
    });
  }

  private relaunchLater(server: ComfyServer, backoffMs: number, why: string): void {
    const next = Math.min(backoffMs * 2, this.o.maxBackoffMs ?? 30_000);
    const t = setTimeout(() => {
      this.probes.delete(t);
      this.launch(server, next);
    }, backoffMs);
    this.probes.add(t);
    server.lastExit = why;
  }

  /** Probes /system_stats until it answers (ready), `alive` turns false, or `giveUp` says so. */
  private probeUntilUp(server: ComfyServer, alive: () => boolean, giveUp: () => boolean = () => false): void {
    const probe = () => {
      if (this.stopped || !alive() || server.ready) return;
      server.client
        .systemStats()
        .then(() => {
          if (!this.stopped && alive()) server.markUp();
        })
        .catch(() => {
          if (this.stopped || !alive() || giveUp()) return;
          const t = setTimeout(() => {
            this.probes.delete(t);
            probe();
          }, PROBE_INTERVAL_MS);
          this.probes.add(t);
        });
    };
    probe();
  }

  /** An attached server: probed until it answers (it is restarted, if at all, by whoever runs it). */
  private watchAttached(server: ComfyServer): void {
    this.probeUntilUp(server, () => true);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * The `comfyui` section a pool serves this machine's GPUs with, or null for none. With `image` the
 * servers are the ones the inventory read the GPUs from (source `comfyui`); when the devices are
 * simulated instead (`--inventory simulated`: tests, a laptop), no server stands behind them, and
 * ComfyUI stages run simulated and say so rather than fail for want of a server.
 */
export function comfyUiForInventory(config: ComfyUiConfig | null, inventorySource: string): ComfyUiConfig | null {
  return config?.image !== undefined && inventorySource !== "comfyui" ? null : config;
}
