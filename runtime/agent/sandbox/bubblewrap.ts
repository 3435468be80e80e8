/**
 * The argv of a sandboxed stage: bubblewrap (`bwrap`) builds a fresh root from read-only system
 * directories, the stage's own inputs (read-only) and outputs, a private /tmp and the model cache, in
 * new mount, PID, IPC, UTS, cgroup and network namespaces, with every capability dropped. Inside it,
 * prlimit caps what the stage may take. Pure: no I/O, so the exact sandbox is testable line by line.
 */
import { dirname, isAbsolute, relative, sep } from "node:path";

/** Where a stage finds its things inside the sandbox, whatever the agent's own layout. */
export const STAGE_VIEW = {
  inputs: "/stage/inputs",
  outputs: "/stage/outputs",
  tmp: "/tmp",
  home: "/tmp",
  cwd: "/tmp",
} as const;

/** System directories a program needs to run, read-only; each is bound only when it exists on the host. */
export const SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"] as const;

export interface Rlimits {
  /** RLIMIT_DATA in bytes (null: not set, a cgroup bounds memory). */
  readonly dataBytes: number | null;
  /** RLIMIT_CPU in seconds (null: not set). */
  readonly cpuSeconds: number | null;
  readonly processes: number;
  readonly openFiles: number;
  readonly fileSizeBytes: number;
}

export interface ProtectedPath {
  readonly path: string;
  readonly kind: "dir" | "file";
}

export interface SandboxPlan {
  /** The attempt's folders on the host. */
  readonly inputsDir: string;
  readonly outputsDir: string;
  readonly tmpDir: string;
  /** System directories as found on the host: a symlink is recreated as one, a folder bound read-only. */
  readonly systemDirs: ReadonlyArray<{ readonly path: string; readonly symlinkTo?: string }>;
  /** Further read-only folders the stage's program needs (its script's folder, a toolchain outside /usr), at their own paths. */
  readonly programDirs: readonly string[];
  readonly modelCacheDir: string | null;
  /** Paths that must never be visible, even where they lie inside a bound folder: masked with an empty one. */
  readonly protectedPaths: readonly ProtectedPath[];
  /** Host device nodes the stage's GPUs need (/dev/nvidia0, /dev/nvidiactl, …). */
  readonly devices: readonly string[];
  readonly network: boolean;
  readonly rlimits: Rlimits;
  readonly prlimit: string;
  /**
   * Where the agent may change users: bwrap runs as root (so it reaches whatever it binds, through
   * folders only root may enter) without a user namespace, and setpriv inside drops the stage to its
   * tenant's uid and gid with no capability left. Absent: bwrap runs as the agent's own user in a user
   * namespace of its own.
   */
  readonly dropTo?: { readonly uid: number; readonly gid: number; readonly setpriv: string };
  readonly command: readonly string[];
}

/** The bwrap arguments (after the program name) that run `plan.command` sandboxed. */
export function bubblewrapArgs(plan: SandboxPlan): string[] {
  const args: string[] = [
    // Namespaces: no view of the agent's processes, mounts, IPC, host name or network.
    ...(plan.dropTo ? [] : ["--unshare-user-try"]),
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    ...(plan.network ? ["--share-net"] : ["--unshare-net"]),
    // The stage dies with its sandbox, and the sandbox with the agent's child: nothing outlives a stop.
    "--die-with-parent",
    "--cap-drop",
    "ALL",
    // setpriv needs these to change users; it then drops them (and the bounding set) before the stage runs.
    ...(plan.dropTo ? ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"] : []),
    "--hostname",
    "stage",
  ];
  for (const dir of plan.systemDirs) {
    if (dir.symlinkTo !== undefined) args.push("--symlink", dir.symlinkTo, dir.path);
    else args.push("--ro-bind", dir.path, dir.path);
  }
  // The private /tmp before the program's folders: a program kept under /tmp is mounted inside it,
  // not hidden by it.
  args.push("--bind", plan.tmpDir, STAGE_VIEW.tmp);
  const extra = [...plan.programDirs, ...(plan.modelCacheDir !== null ? [plan.modelCacheDir] : [])];
  // The folders above a bound one are made here, open to the stage (bwrap would make them root's only).
  for (const dir of mountPointParents(extra, plan.systemDirs.map((d) => d.path))) args.push("--perms", "0755", "--dir", dir);
  for (const dir of extra) args.push("--ro-bind", dir, dir);
  // A fresh /proc of the stage's own PID namespace, a minimal /dev, and the stage's GPUs only.
  args.push("--proc", "/proc", "--dev", "/dev");
  for (const device of plan.devices) args.push("--dev-bind", device, device);
  if (plan.devices.length > 0) args.push("--ro-bind-try", "/sys", "/sys");
  args.push("--perms", "0755", "--dir", "/stage");
  args.push("--ro-bind", plan.inputsDir, STAGE_VIEW.inputs);
  args.push("--bind", plan.outputsDir, STAGE_VIEW.outputs);
  // Masks last: a protected path inside any bound folder becomes an empty, read-only one.
  const bound = [...plan.systemDirs.filter((d) => d.symlinkTo === undefined).map((d) => d.path), ...plan.programDirs, ...(plan.modelCacheDir ? [plan.modelCacheDir] : [])];
  for (const mask of masksWithin(plan.protectedPaths, bound)) {
    if (mask.kind === "dir") args.push("--tmpfs", mask.path, "--remount-ro", mask.path);
    else args.push("--ro-bind", "/dev/null", mask.path);
  }
  args.push("--remount-ro", "/", "--chdir", STAGE_VIEW.cwd, "--");
  if (plan.dropTo) {
    const { uid, gid, setpriv } = plan.dropTo;
    args.push(setpriv, `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--");
  }
  args.push(plan.prlimit, ...rlimitArgs(plan.rlimits), "--", ...plan.command);
  return args;
}

/**
 * The folders above each bound folder that the sandbox's root does not already have: not `/`, not a
 * system folder or inside one, not `/tmp` itself (bound before them). Parents before children, once each.
 */
export function mountPointParents(bound: readonly string[], systemDirs: readonly string[]): string[] {
  const parents = new Set<string>();
  for (const dir of bound) {
    const parts = dir.split(sep).filter((p) => p !== "");
    let current = "";
    for (const part of parts.slice(0, -1)) {
      current = `${current}${sep}${part}`;
      if (current === STAGE_VIEW.tmp || systemDirs.some((s) => isInside(current, s))) continue;
      parents.add(current);
    }
  }
  return [...parents].sort((a, b) => a.split(sep).length - b.split(sep).length || (a < b ? -1 : 1));
}

function rlimitArgs(limits: Rlimits): string[] {
  const args = [
    `--nproc=${limits.processes}`,
    `--nofile=${limits.openFiles}`,
    `--fsize=${limits.fileSizeBytes}`,
    "--core=0",
  ];
  if (limits.dataBytes !== null) args.push(`--data=${limits.dataBytes}`);
  if (limits.cpuSeconds !== null) args.push(`--cpu=${limits.cpuSeconds}`);
  return args;
}

/** Protected paths that lie inside (or are) one of the bound folders. */
export function masksWithin(protectedPaths: readonly ProtectedPath[], bound: readonly string[]): ProtectedPath[] {
  const masks = new Map<string, ProtectedPath>();
  for (const p of protectedPaths) {
    if (bound.some((b) => isInside(p.path, b))) masks.set(p.path, p);
  }
  // Outer masks first: a mask inside one already masked would have no mount point.
  const sorted = [...masks.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  return sorted.filter((m) => !sorted.some((o) => o !== m && o.kind === "dir" && isInside(m.path, o.path)));
}

/** Whether `path` is `dir` or lies under it (both absolute and normalized). */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel) && rel.split(sep)[0] !== "..");
}

/**
 * The folders a command's programs need beyond the system ones: for each absolute argument naming a
 * file (a resolved script, an absolute program), its folder; for a program in a `bin` folder outside
 * the system directories (a toolchain under /home or /root), the folder above it as well.
 */
export function programDirsOf(command: readonly string[], resolvedProgram: string | null, systemDirs: readonly string[], isFile: (p: string) => boolean): string[] {
  const dirs = new Set<string>();
  const add = (file: string) => {
    if (systemDirs.some((s) => isInside(file, s))) return;
    const dir = dirname(file);
    dirs.add(dirname(dir) !== dir && dir.endsWith(`${sep}bin`) ? dirname(dir) : dir);
  };
  if (resolvedProgram !== null) add(resolvedProgram);
  for (const arg of command.slice(1)) if (isAbsolute(arg) && isFile(arg)) add(arg);
  // A folder inside another bound one adds nothing.
  const list = [...dirs].sort();
  return list.filter((d) => !list.some((o) => o !== d && isInside(d, o)));
}
