/**
 * What one durable write costs on the file system a directory is on: a small file written and fsynced
 * N times (the median and p99 of write+fsync), and the file system's type from statfs and /proc/mounts.
 * A "durable" submission rate means nothing where a sync costs nothing: on a memory file system (tmpfs,
 * ramfs) the figure is marked not durable, with a note saying why.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, statfsSync, writeSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { median, percentile } from "../runtime/sim/metrics.ts";

/** statfs f_type of the file systems that keep data only in memory (linux/magic.h). */
const MEMORY_FS_MAGIC: Readonly<Record<number, string>> = { 0x01021994: "tmpfs", 0x858458f6: "ramfs" };
const MEMORY_FS_NAMES = new Set(["tmpfs", "ramfs"]);

export interface StorageProbe {
  readonly dir: string;
  /** The mount's type as /proc/mounts names it ("unknown" where it cannot be read). */
  readonly fileSystem: string;
  readonly mountPoint: string;
  /** statfs f_type, in hex. */
  readonly statfsType: string;
  readonly samples: number;
  /** write + fsync of a 4 KiB block, true median and nearest-rank p99, in ms. */
  readonly fsyncP50Ms: number;
  readonly fsyncP99Ms: number;
  /** False on a memory file system: a rate measured there is not a durable one. */
  readonly durable: boolean;
  readonly note: string | null;
}

/** The mount a path is on: the longest mount point that contains it (mounts as /proc/mounts lists them). */
export function mountOf(path: string, mountsText: string): { mountPoint: string; fileSystem: string } {
  let best = { mountPoint: "", fileSystem: "unknown" };
  for (const line of mountsText.split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 3) continue;
    // /proc/mounts escapes spaces, tabs, newlines and backslashes in octal.
    const mountPoint = fields[1]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = path === mountPoint || path.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`);
    // Later lines over the same mount point are mounted on top of earlier ones: >= keeps the last.
    if (inside && mountPoint.length >= best.mountPoint.length) best = { mountPoint, fileSystem: fields[2]! };
  }
  return best.mountPoint === "" ? { mountPoint: "/", fileSystem: "unknown" } : best;
}

/** Whether either source says the file system keeps its data only in memory. */
export function isMemoryFileSystem(fileSystem: string, statfsType: number): boolean {
  return MEMORY_FS_NAMES.has(fileSystem) || MEMORY_FS_MAGIC[statfsType] !== undefined;
}

/** Measures `dir`'s file system (it must exist): `samples` write+fsync pairs of a small file, in a temporary folder removed after. */
export function probeStorage(dir: string, samples = 200): StorageProbe {
  const real = realpathSync(dir);
  const scratch = mkdtempSync(join(real, ".fsync-probe-"));
  const costs: number[] = [];
  const block = Buffer.alloc(4096, 1);
  try {
    const fd = openSync(join(scratch, "probe"), "w");
    try {
      for (let i = 0; i < samples; i++) {
        const t0 = performance.now();
        writeSync(fd, block, 0, block.length, (i % 16) * 4096);
        fsyncSync(fd);
        costs.push(performance.now() - t0);
      }
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  let mountsText = "";
  try {
    mountsText = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    // Not Linux: statfs alone decides.
  }
  const mount = mountOf(real, mountsText);
  const type = statfsSync(real).type;
  const memory = isMemoryFileSystem(mount.fileSystem, type);
  const round3 = (x: number | null) => (x === null ? 0 : Math.round(x * 1000) / 1000);
  return {
    dir: real,
    ...mount,
    statfsType: `0x${type.toString(16)}`,
    samples,
    fsyncP50Ms: round3(median(costs)),
    fsyncP99Ms: round3(percentile(costs, 99)),
    durable: !memory,
    note: memory
      ? `${real} is on ${MEMORY_FS_MAGIC[type] ?? mount.fileSystem} (memory): an fsync there writes nothing to a disk, so no rate measured on it is a durable one; point TMPDIR at a disk-backed folder`
      : null,
  };
}
