/**
 * The GPUs of the ComfyUI server containers (`comfyui.image`): the deployment runs one server per GPU
 * beside the agent's runner (single agent) or the worker (cluster); server i listens on
 * 127.0.0.1:(portRange.from + i) and holds one GPU of its own. Kubernetes gives a device to one
 * container only, so nvidia-smi here sees none of them: each is read from its server's
 * `GET /system_stats` (`devices[0]`: name, type, vram_total and vram_free in bytes) instead.
 *
 * The devices are real (`simulated: false`) but carry no UUID: the server does not report one, and no
 * process of ours could use it (`heldBy: "comfyui"`). Ids are `<node>-g<i>`, as nvidia-smi's are.
 */
import type { ComfyUiConfig, PoolConfig } from "../../config/schema.ts";
import type { Inventory } from "./discover.ts";
import { InventoryError, type ComfyUiHeldGpuDevice } from "./types.ts";

export interface ComfyUiServersOptions {
  readonly comfyui: Pick<ComfyUiConfig, "image" | "portRange">;
  /** Name of this node: the devices' ids are `<node>-g<i>`. */
  readonly node: string;
  /** How long the servers may take to answer, all together (they scan their model folders as they start). */
  readonly waitMs: number;
  /** Pause between probes of a server that does not answer yet (default 500 ms). */
  readonly pollMs?: number;
  /** What the devices are checked against (warnings only). */
  readonly pool?: PoolConfig;
  readonly host?: string;
}

const MIB = 1024 * 1024;
const PROBE_TIMEOUT_MS = 2_000;

type Probe = { readonly ok: true; readonly device: ComfyUiHeldGpuDevice } | { readonly ok: false; readonly why: string; readonly final: boolean };

/**
 * One device per port of `comfyui.portRange`, in port order, once every server answered.
 *
 * Why the agent refuses to start rather than start without them: its scheduler's devices are fixed
 * when it starts, so an agent that began without a server's GPU would never use it; in Kubernetes the
 * kubelet restarts only the agent's container (with backoff, visible in the pod's status) while the
 * server containers go on starting, so a late server is picked up by the next start.
 */
export async function comfyUiServersInventory(o: ComfyUiServersOptions): Promise<Inventory> {
  const { from, to } = o.comfyui.portRange;
  const ports = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const deadline = Date.now() + o.waitMs;
  const probes = await Promise.all(ports.map((port, i) => waitForServer(o, port, i, deadline)));
  const failed = probes.flatMap((p, i) => (p.ok ? [] : [`port ${ports[i]}: ${p.why}`]));
  if (failed.length > 0) {
    throw new InventoryError(
      `comfyui.image is set, so this node's GPUs are those of its ComfyUI server containers, one per port of comfyui.portRange ${from}-${to} (tried ${ports.join(", ")}), ` +
        `but ${failed.length} of ${ports.length} did not answer GET /system_stats with a GPU within ${o.waitMs} ms (${failed.join("; ")}): ` +
        `check that the pod runs one server per port, listening on 127.0.0.1, and read the failing server containers' logs; raise comfyui.startTimeoutMs if they only start slowly`
    );
  }
  const devices = probes.map((p) => (p as Extract<Probe, { ok: true }>).device);
  const warnings = [`the ${devices.length} GPU(s) are held by the ComfyUI server containers on ports ${from}-${to}: only ComfyUI stages run on them`];
  if (o.pool !== undefined) {
    for (const d of devices) {
      if (Math.abs(d.memoryMiB - o.pool.gpu.memoryMiB) > o.pool.gpu.memoryMiB * 0.1) {
        warnings.push(`GPU ${d.index} (${d.name}, the server on port ${from + d.index}) has ${d.memoryMiB} MiB but pool '${o.pool.name}' declares ${o.pool.gpu.memoryMiB} MiB (${o.pool.gpu.model})`);
      }
    }
  }
  return { source: "comfyui", devices, warnings };
}

async function waitForServer(o: ComfyUiServersOptions, port: number, index: number, deadline: number): Promise<Probe> {
  let last: Probe = { ok: false, why: "no answer", final: false };
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return last;
    last = await probe(o, port, index, Math.min(PROBE_TIMEOUT_MS, left));
    if (last.ok || last.final) return last;
    await new Promise((resolve) => setTimeout(resolve, Math.min(o.pollMs ?? 500, Math.max(0, deadline - Date.now()))));
  }
}

async function probe(o: ComfyUiServersOptions, port: number, index: number, timeoutMs: number): Promise<Probe> {
  let body: unknown;
  try {
    const res = await fetch(`http://${o.host ?? "127.0.0.1"}:${port}/system_stats`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { ok: false, why: `HTTP ${res.status}`, final: false };
    body = await res.json();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, why: e.cause?.code ?? (e.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : e.message), final: false };
  }
  const device = (body as { devices?: unknown[] } | null)?.devices?.[0] as Record<string, unknown> | undefined;
  const total = device?.vram_total;
  const free = device?.vram_free;
  if (device === undefined || typeof total !== "number" || typeof free !== "number" || typeof device.name !== "string") {
    // A program that answers but is not a ComfyUI server will not become one.
    return { ok: false, why: "its /system_stats lists no device with name, vram_total and vram_free", final: true };
  }
  if (device.type !== "cuda" || total <= 0) {
    return { ok: false, why: `its first device is '${String(device.type)}' (${device.name}), not a GPU: the server runs without its GPU (check the container's GPU request and the server's --cpu flag)`, final: true };
  }
  const memoryMiB = Math.floor(total / MIB);
  return {
    ok: true,
    device: {
      id: `${o.node}-g${index}`,
      uuid: null,
      node: o.node,
      index,
      name: productName(device.name),
      memoryMiB,
      memoryUsedMiB: Math.min(memoryMiB, Math.max(0, Math.round((total - free) / MIB))),
      simulated: false,
      heldBy: "comfyui",
    },
  };
}

/** ComfyUI names a device `cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync`: the product is the middle. */
function productName(name: string): string {
  return /^[a-z]+:\d+\s+(.+?)(?:\s+:\s+\S+)?$/.exec(name)?.[1] ?? name;
}
