/**
 * VRAM and utilization of every GPU over the last 24 hours, for the dashboard's charts: a fixed-size ring
 * per device, sampled every 5 s, so memory stays bounded however long the agent runs (24 h at 5 s is
 * 17,280 samples a device, about 0.5 MiB for 8 GPUs).
 *
 * Each sample holds the MiB the scheduler has reserved on the device (what the running stages declared),
 * and, where the agent reads nvidia-smi itself, the MiB the device really has in use and its utilization.
 * Simulated devices, a runner's GPUs (nvidia-smi runs in the runner's container) and MIG instances
 * (nvidia-smi's per-GPU query does not break them down) have the reserved figure only.
 *
 * In cluster mode every control-plane replica samples what its own queue knows: the leader's loop holds
 * the running stages, so its history is the full one; a replica that does not lead answers with what it
 * has (reservations of 0 while it follows, the samples of its own tenure if it led before).
 */
import type { GpuDevice } from "../inventory/types.ts";
import { runCommand } from "../inventory/command.ts";
import { scheduledMiB } from "./metrics.ts";
import type { RunQueue } from "./run-queue.ts";

export const HISTORY_STEP_MS = 5_000;
export const HISTORY_MAX_AGE_MS = 24 * 60 * 60 * 1000;
/** Samples a device's ring holds at most, whatever the step and window asked (about 6 MiB a device). */
export const HISTORY_MAX_SAMPLES = 200_000;
/** Points per device in one answer at most: a longer window is answered in coarser steps (the max of each). */
export const HISTORY_MAX_POINTS = 720;

/** What nvidia-smi measured on a device: MiB in use and utilization (%), by GPU UUID. */
export type MeasuredUse = ReadonlyMap<string, { readonly usedMiB: number | undefined; readonly utilPercent: number | undefined }>;

export interface GpuHistoryOptions {
  readonly devices: readonly GpuDevice[];
  /** MiB the scheduler has reserved per device id (the running stages' declared VRAM). */
  readonly reservedMiB: () => ReadonlyMap<string, number>;
  /** Reads the real devices' use; absent where the agent does not read nvidia-smi itself. */
  readonly measure?: () => Promise<MeasuredUse>;
  readonly stepMs?: number;
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

/** One point: epoch seconds, MiB used (measured where known, else reserved), utilization % or null, MiB reserved. */
export type HistorySample = [number, number, number | null, number];

export interface DeviceHistory {
  readonly id: string;
  readonly node: string;
  readonly totalMiB: number;
  readonly simulated: boolean;
  /** Whether usedMiB is nvidia-smi's reading (true) or the scheduler's reservation (false). */
  readonly measured: boolean;
  readonly samples: HistorySample[];
}

/** A ring of fixed capacity: the oldest sample is overwritten once it is full. */
class Ring {
  readonly times: Float64Array;
  readonly used: Float64Array;
  readonly util: Float64Array;
  readonly reserved: Float64Array;
  private next = 0;
  size = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
    this.used = new Float64Array(capacity);
    this.util = new Float64Array(capacity);
    this.reserved = new Float64Array(capacity);
  }

  push(time: number, used: number, util: number, reserved: number): void {
    this.times[this.next] = time;
    this.used[this.next] = used;
    this.util[this.next] = util;
    this.reserved[this.next] = reserved;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Indexes of the samples at or after `since`, oldest first. */
  indexesSince(since: number): number[] {
    const out: number[] = [];
    const first = (this.next - this.size + this.capacity) % this.capacity;
    for (let k = 0; k < this.size; k++) {
      const i = (first + k) % this.capacity;
      if (this.times[i]! >= since) out.push(i);
    }
    return out;
  }
}

export class GpuHistory {
  readonly stepMs: number;
  readonly capacity: number;
  private readonly rings: Map<string, Ring>;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  private readonly now: () => number;

  constructor(private readonly o: GpuHistoryOptions) {
    this.stepMs = o.stepMs ?? HISTORY_STEP_MS;
    this.capacity = Math.min(HISTORY_MAX_SAMPLES, Math.max(1, Math.ceil((o.maxAgeMs ?? HISTORY_MAX_AGE_MS) / this.stepMs)));
    this.now = o.now ?? Date.now;
    this.rings = new Map();
  }

  /** A device's ring, made at its first sample: a control plane's devices come into service as workers join. */
  private ring(id: string): Ring {
    let ring = this.rings.get(id);
    if (!ring) this.rings.set(id, (ring = new Ring(this.capacity)));
    return ring;
  }

  /** Samples now and then every step; the timer does not keep the process alive. */
  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.stepMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample of every device; a sample still reading nvidia-smi makes this one a no-op. */
  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const measured = this.o.measure ? await this.o.measure().catch(() => undefined) : undefined;
      const reserved = this.o.reservedMiB();
      const time = this.now() / 1000;
      for (const d of this.o.devices) {
        const r = reserved.get(d.id) ?? 0;
        const m = d.uuid === null ? undefined : measured?.get(d.uuid);
        this.ring(d.id).push(time, m?.usedMiB ?? Number.NaN, m?.utilPercent ?? Number.NaN, r);
      }
    } finally {
      this.sampling = false;
    }
  }

  /** Samples per device over the last `minutes`, in steps of stepSeconds (coarser than the sampling for long windows). */
  read(minutes: number): { stepSeconds: number; devices: DeviceHistory[] } {
    const since = this.now() / 1000 - minutes * 60;
    const perDevice = this.o.devices.map((d) => {
      const ring = this.ring(d.id);
      return { d, ring, at: ring.indexesSince(since) };
    });
    const longest = Math.max(0, ...perDevice.map((p) => p.at.length));
    const group = Math.max(1, Math.ceil(longest / HISTORY_MAX_POINTS));
    return {
      stepSeconds: (this.stepMs / 1000) * group,
      devices: perDevice.map(({ d, ring, at }) => {
        const samples: HistorySample[] = [];
        let measured = false;
        for (let g = 0; g < at.length; g += group) {
          // The busiest moment of each step: a short peak must not vanish from a coarse chart.
          let used = 0;
          let reserved = 0;
          let util: number | null = null;
          let time = 0;
          for (const i of at.slice(g, g + group)) {
            const m = ring.used[i]!;
            if (!Number.isNaN(m)) measured = true;
            used = Math.max(used, Number.isNaN(m) ? ring.reserved[i]! : m);
            reserved = Math.max(reserved, ring.reserved[i]!);
            if (!Number.isNaN(ring.util[i]!)) util = Math.max(util ?? 0, ring.util[i]!);
            time = ring.times[i]!;
          }
          samples.push([Math.round(time), used, util, reserved]);
        }
        return { id: d.id, node: d.node, totalMiB: d.memoryMiB, simulated: d.simulated, measured, samples };
      }),
    };
  }

  /** Samples held for a device (at most capacity). */
  held(deviceId: string): number {
    return this.rings.get(deviceId)?.size ?? 0;
  }
}

const USE_QUERY_ARGS = ["--query-gpu=uuid,memory.used,utilization.gpu", "--format=csv,noheader,nounits"] as const;

/** Memory in use and utilization of every GPU, read with nvidia-smi; an empty map when it fails. */
export async function measureWithNvidiaSmi(nvidiaSmi: string, timeoutMs = 4_000): Promise<MeasuredUse> {
  const out = new Map<string, { usedMiB: number | undefined; utilPercent: number | undefined }>();
  const result = await runCommand(nvidiaSmi, USE_QUERY_ARGS, timeoutMs);
  if (!result.ok) return out;
  return parseUseQuery(result.stdout);
}

/** Lines of `uuid, memory.used, utilization.gpu`; `[N/A]` and friends read as unknown. */
export function parseUseQuery(text: string): MeasuredUse {
  const out = new Map<string, { usedMiB: number | undefined; utilPercent: number | undefined }>();
  const num = (v: string | undefined) => {
    const n = v === undefined || v.trim() === "" ? Number.NaN : Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  };
  for (const line of text.split(/\r?\n/)) {
    const [uuid, used, util] = line.split(",").map((f) => f.trim());
    if (!uuid || !/^GPU-/.test(uuid)) continue;
    out.set(uuid, { usedMiB: num(used), utilPercent: num(util) });
  }
  return out;
}

/**
 * The agent's history: reservations from the queue that runs work (the loop, or a control plane's view of
 * it), and nvidia-smi's readings where the agent reads it itself (`nvidiaSmi`: absent when simulated or
 * when a runner's container holds the GPUs). Started; stop() it on close.
 */
export function startGpuHistory(options: {
  readonly devices: readonly GpuDevice[];
  readonly queue: () => RunQueue | undefined;
  readonly nvidiaSmi?: string;
  readonly stepS?: number;
  readonly windowS?: number;
}): GpuHistory {
  const nvidiaSmi = options.nvidiaSmi;
  const history = new GpuHistory({
    devices: options.devices,
    reservedMiB: () => scheduledMiB(options.queue(), options.devices),
    ...(nvidiaSmi !== undefined && { measure: () => measureWithNvidiaSmi(nvidiaSmi) }),
    ...(options.stepS !== undefined && { stepMs: options.stepS * 1000 }),
    ...(options.windowS !== undefined && { maxAgeMs: options.windowS * 1000 }),
  });
  history.start();
  return history;
}
