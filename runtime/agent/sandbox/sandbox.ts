/**
 * The sandbox every stage process runs in (see bubblewrap.ts for what it contains). This module finds
 * what the host offers (system folders, the program's folders, GPU device nodes), chooses the stage's
 * uid, hands the attempt's folders to that uid, and returns the command line to spawn.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { chmod, chown } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";
import type { IsolationConfig } from "../../config/schema.ts";
import { STAGE_VIEW, SYSTEM_DIRS, bubblewrapArgs, isInside, programDirsOf, type ProtectedPath, type Rlimits } from "./bubblewrap.ts";

export interface SandboxIdentity {
  /** `per-tenant`: stages run as the tenant's own uid and gid (the agent may change users). `agent`: as the agent's uid, behind namespaces. */
  readonly mode: "per-tenant" | "agent";
  readonly uidRangeStart: number;
  /** Tenant names in config order: tenant i runs as uidRangeStart + i. */
  readonly tenants: readonly string[];
}

export interface StageSandboxOptions {
  readonly bwrap: string;
  readonly prlimit: string;
  /** util-linux's setpriv: drops a stage to its tenant's uid (identity `per-tenant`). */
  readonly setpriv: string | null;
  readonly identity: SandboxIdentity;
  readonly isolation: IsolationConfig;
  /** Never visible to a stage: the data directory, the scratch root, secret mounts, the audit sink, the config file. */
  readonly protectedPaths: readonly string[];
}

/** What the sandbox needs to know of one attempt. */
export interface SandboxAttempt {
  readonly tenant: string | undefined;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly network: boolean;
  readonly timeoutS: number | undefined;
  readonly realGpus: boolean;
  readonly workspace: string;
  readonly inputs: string;
  readonly outputs: string;
  readonly tmp: string;
}

export interface SandboxLaunch {
  readonly file: string;
  readonly args: string[];
  readonly cwd: string;
}

export class SandboxRefusal extends Error {}

export class StageSandbox {
  private readonly systemDirs: ReadonlyArray<{ path: string; symlinkTo?: string }>;
  private readonly protectedPaths: ProtectedPath[];
  private readonly hardLimits = agentHardLimits();

  constructor(readonly options: StageSandboxOptions) {
    this.systemDirs = hostSystemDirs();
    this.protectedPaths = options.protectedPaths
      .filter((p) => isAbsolute(p) && existsSync(p))
      .map((p) => ({ path: realpathSync(p), kind: statSync(p).isDirectory() ? ("dir" as const) : ("file" as const) }));
  }

  /** What the stage's environment says about where things are: the paths inside the sandbox. */
  get view(): typeof STAGE_VIEW {
    return STAGE_VIEW;
  }

  /** The uid (and gid) a tenant's stages run as; undefined when they run as the agent's uid. */
  uidOf(tenant: string | undefined): number | undefined {
    if (this.options.identity.mode !== "per-tenant") return undefined;
    const index = tenant === undefined ? -1 : this.options.identity.tenants.indexOf(tenant);
    if (index < 0) throw new SandboxRefusal(`tenant '${tenant ?? "(none)"}' is not in the platform config: its stages have no uid to run as`);
    return this.options.identity.uidRangeStart + index;
  }

  /** Hands the attempt's folders to its uid and returns the command line; throws SandboxRefusal when it must not run. */
  async prepare(attempt: SandboxAttempt): Promise<SandboxLaunch> {
    const { isolation } = this.options;
    if (attempt.network && !isolation.allowEgress) {
      throw new SandboxRefusal("the stage declares run.network: egress, but the platform's isolation.allowEgress is false: allow egress in the platform config, or drop it from the stage");
    }
    const uid = this.uidOf(attempt.tenant);
    const program = resolveProgram(attempt.command[0]!, attempt.env.PATH ?? "");
    const programDirs = programDirsOf(attempt.command, program, this.systemDirs.map((d) => d.path), isFile).map((d) => realpathSync(d));
    const modelCacheDir = isolation.modelCacheDir !== null && existsSync(isolation.modelCacheDir) ? realpathSync(isolation.modelCacheDir) : null;
    for (const dir of [...programDirs, ...(modelCacheDir ? [modelCacheDir] : [])]) {
      const inside = this.protectedPaths.find((p) => p.kind === "dir" && isInside(dir, p.path));
      if (inside) throw new SandboxRefusal(`the stage's program folder ${dir} lies inside ${inside.path}, which stages must never see: keep programs and the model cache outside the agent's data, scratch and secret folders`);
    }
    if (uid !== undefined) {
      if (this.options.setpriv === null) throw new SandboxRefusal("setpriv (util-linux) is not installed: it drops each stage to its tenant's uid");
      for (const dir of [...programDirs, ...(modelCacheDir ? [modelCacheDir] : [])]) {
        if (!opensTo(dir, uid)) {
          throw new SandboxRefusal(`the stage's uid ${uid} cannot read ${dir}: make it readable by others (chmod o+rx), or keep the workflow's programs elsewhere`);
        }
      }
      // The stage's uid owns its outputs, tmp and the copies of its inputs; bwrap (root) binds them.
      await chown(attempt.outputs, uid, uid);
      await chown(attempt.tmp, uid, uid);
      await chownTree(attempt.inputs, uid);
    }
    const limits = isolation.limits;
    // A stage inherits the agent's limits and may only lower them: each is the lower of the two.
    const hard = this.hardLimits;
    const rlimits: Rlimits = {
      dataBytes: lower(limits.memoryMiB * 1024 * 1024, hard.data),
      cpuSeconds: attempt.timeoutS === undefined ? null : lower(Math.ceil(attempt.timeoutS * limits.cpus) + 1, hard.cpu),
      processes: lower(limits.processes, hard.nproc)!,
      openFiles: lower(limits.openFiles, hard.nofile)!,
      fileSizeBytes: lower(limits.fileSizeMiB * 1024 * 1024, hard.fsize)!,
    };
    const args = bubblewrapArgs({
      inputsDir: attempt.inputs,
      outputsDir: attempt.outputs,
      tmpDir: attempt.tmp,
      systemDirs: this.systemDirs,
      programDirs,
      modelCacheDir,
      protectedPaths: this.protectedPaths,
      devices: attempt.realGpus ? gpuDeviceNodes() : [],
      network: attempt.network,
      rlimits,
      prlimit: this.options.prlimit,
      ...(uid !== undefined && { dropTo: { uid, gid: uid, setpriv: this.options.setpriv! } }),
      command: attempt.command,
    });
    return { file: this.options.bwrap, args, cwd: "/" };
  }
}

/** Whether `uid` may list and enter `dir` itself (bwrap, as root, reaches it through any folder above). */
function opensTo(dir: string, uid: number): boolean {
  let info;
  try {
    info = statSync(dir);
  } catch {
    return false;
  }
  const bits = info.uid === uid ? (info.mode >> 6) & 0o7 : info.gid === uid ? (info.mode >> 3) & 0o7 : info.mode & 0o7;
  return (bits & 0o5) === 0o5;
}

/** The agent's own hard limits (what its children inherit), from /proc/self/limits; undefined: unlimited or unknown. */
function agentHardLimits(): { data?: number; cpu?: number; nproc?: number; nofile?: number; fsize?: number } {
  const names: Record<string, "data" | "cpu" | "nproc" | "nofile" | "fsize"> = {
    "Max data size": "data",
    "Max cpu time": "cpu",
    "Max processes": "nproc",
    "Max open files": "nofile",
    "Max file size": "fsize",
  };
  const found: { data?: number; cpu?: number; nproc?: number; nofile?: number; fsize?: number } = {};
  try {
    for (const line of readFileSync("/proc/self/limits", "utf8").split("\n")) {
      for (const [label, key] of Object.entries(names)) {
        if (!line.startsWith(label)) continue;
        const hardValue = line.slice(label.length).trim().split(/\s+/)[1];
        if (hardValue !== undefined && /^\d+$/.test(hardValue)) found[key] = Number(hardValue);
      }
    }
  } catch {
    // no /proc: the configured limits stand
  }
  return found;
}

function lower(wanted: number, hard: number | undefined): number {
  return hard === undefined ? wanted : Math.min(wanted, hard);
}

/** The system folders present on this host: symlinks (merged /usr) are recreated as symlinks. */
function hostSystemDirs(): Array<{ path: string; symlinkTo?: string }> {
  const found: Array<{ path: string; symlinkTo?: string }> = [];
  for (const path of SYSTEM_DIRS) {
    let info;
    try {
      info = lstatSync(path);
    } catch {
      continue;
    }
    if (info.isSymbolicLink()) found.push({ path, symlinkTo: readlinkSync(path) });
    else if (info.isDirectory()) found.push({ path });
  }
  return found;
}

/** The program's file as the stage's PATH finds it (absolute names as they are); null when not found. */
export function resolveProgram(program: string, path: string): string | null {
  if (program.includes("/")) return isAbsolute(program) && isFile(program) ? realpathSync(program) : null;
  for (const dir of path.split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, program);
    if (isFile(candidate)) return realpathSync(candidate);
  }
  return null;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** NVIDIA's device nodes: the control and UVM devices and every GPU (CUDA_VISIBLE_DEVICES picks the stage's). */
function gpuDeviceNodes(): string[] {
  let names: string[];
  try {
    names = readdirSync("/dev");
  } catch {
    return [];
  }
  return names.filter((n) => /^nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset)$/.test(n)).map((n) => join("/dev", n)).sort();
}

/** Gives the inputs' copies to the stage's uid, private to it (the agent, as root, still reads them). */
async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  await chmod(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid);
    else if (entry.isFile()) {
      await chown(path, uid, uid);
      await chmod(path, 0o400);
    }
  }
}
