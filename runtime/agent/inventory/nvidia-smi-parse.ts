/**
 * Parsers for nvidia-smi's machine-readable output. They accept what drivers of the last years print
 * (CRLF line ends, `[N/A]` values, commas in product names, both MIG line formats) and report lines
 * they cannot read instead of guessing.
 */

/** One line of `--query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits`. */
export interface GpuQueryRow {
  readonly index: number;
  readonly uuid: string;
  readonly name: string;
  readonly memoryTotalMiB: number;
  /** Undefined when nvidia-smi reports `[N/A]`. */
  readonly memoryUsedMiB: number | undefined;
}

/** A GPU of `nvidia-smi -L`, with its MIG devices when MIG is enabled. */
export interface GpuListEntry {
  readonly index: number;
  readonly name: string;
  readonly uuid: string;
  readonly mig: readonly MigListEntry[];
}

export interface MigListEntry {
  /** e.g. `3g.40gb`. */
  readonly profile: string;
  /** The MIG device's index on its GPU. */
  readonly deviceIndex: number;
  /** `MIG-<uuid>` on current drivers, `MIG-GPU-<uuid>/<gi>/<ci>` on drivers before 470. */
  readonly uuid: string;
}

/** One line of `--query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits`. */
export interface ComputeAppRow {
  readonly pid: number;
  readonly gpuUuid: string;
  readonly usedMiB: number | undefined;
}

export interface Parsed<T> {
  readonly rows: T[];
  /** Lines that could not be read, with why. */
  readonly skipped: string[];
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "");
}

/** `[N/A]`, `[Not Supported]`, `N/A` and friends read as undefined. */
function optionalNumber(field: string): number | undefined {
  const value = field.trim();
  if (value === "" || /^\[?(N\/A|Not Supported|Unknown Error|Insufficient Permissions)\]?$/i.test(value)) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function wholeNumber(field: string): number | undefined {
  const n = optionalNumber(field);
  return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
}

export function parseGpuQuery(text: string): Parsed<GpuQueryRow> {
  const rows: GpuQueryRow[] = [];
  const skipped: string[] = [];
  for (const line of lines(text)) {
    const f = line.split(",");
    if (f.length < 5) {
      skipped.push(`'${line}': expected 5 comma-separated fields (index, uuid, name, memory.total, memory.used)`);
      continue;
    }
    // The product name sits in the middle, so a comma inside it cannot shift the other fields.
    const index = wholeNumber(f[0]!);
    const uuid = f[1]!.trim();
    const name = f.slice(2, -2).join(",").trim();
    const total = optionalNumber(f[f.length - 2]!);
    const used = optionalNumber(f[f.length - 1]!);
    if (index === undefined) skipped.push(`'${line}': index is not a whole number`);
    else if (!/^GPU-[0-9a-fA-F-]+$/.test(uuid)) skipped.push(`'${line}': '${uuid}' is not a GPU UUID (GPU-…)`);
    else if (total === undefined || total <= 0) skipped.push(`'${line}': memory.total is not a number of MiB`);
    else rows.push({ index, uuid, name, memoryTotalMiB: Math.floor(total), memoryUsedMiB: used === undefined ? undefined : Math.floor(used) });
  }
  return { rows, skipped };
}

const GPU_LINE = /^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[0-9a-fA-F-]+)\)\s*$/;
const MIG_LINE = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*(MIG-[^)\s]+)\)\s*$/;

export function parseGpuList(text: string): Parsed<GpuListEntry> {
  const rows: Array<{ index: number; name: string; uuid: string; mig: MigListEntry[] }> = [];
  const skipped: string[] = [];
  for (const line of lines(text)) {
    const gpu = GPU_LINE.exec(line);
    if (gpu) {
      rows.push({ index: Number(gpu[1]), name: gpu[2]!, uuid: gpu[3]!, mig: [] });
      continue;
    }
    const mig = MIG_LINE.exec(line);
    if (mig && rows.length > 0) rows[rows.length - 1]!.mig.push({ profile: mig[1]!, deviceIndex: Number(mig[2]), uuid: mig[3]! });
    else if (mig) skipped.push(`'${line.trim()}': a MIG device before any GPU line`);
    else skipped.push(`'${line.trim()}': neither a 'GPU n: NAME (UUID: GPU-…)' nor a '  MIG PROFILE Device n: (UUID: MIG-…)' line`);
  }
  return { rows, skipped };
}

export function parseComputeApps(text: string): Parsed<ComputeAppRow> {
  const rows: ComputeAppRow[] = [];
  const skipped: string[] = [];
  for (const line of lines(text)) {
    if (/^No running/i.test(line.trim())) continue;
    const f = line.split(",").map((x) => x.trim());
    const pid = f.length === 3 ? wholeNumber(f[0]!) : undefined;
    if (pid === undefined || !/^(GPU|MIG)-/.test(f[1] ?? "")) {
      skipped.push(`'${line}': expected pid, gpu_uuid, used_memory`);
      continue;
    }
    const used = optionalNumber(f[2]!);
    rows.push({ pid, gpuUuid: f[1]!, usedMiB: used === undefined ? undefined : Math.floor(used) });
  }
  return { rows, skipped };
}

/**
 * Memory of a MIG profile from its name (`3g.40gb`, `1g.10gb+me`, `1c.3g.40gb`): the name gives decimal
 * GB, read here as that many 10^9 bytes, so the figure is a little under what the instance really
 * offers and never promises a stage more than is there. Undefined when the name carries no size.
 */
export function migProfileMemoryMiB(profile: string): number | undefined {
  const m = /(\d+(?:\.\d+)?)gb/i.exec(profile);
  if (!m) return undefined;
  return Math.floor((Number(m[1]) * 1e9) / (1024 * 1024));
}
