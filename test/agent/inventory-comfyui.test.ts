/**
 * `comfyui.image`: the GPUs are the ComfyUI server containers', read from each server's /system_stats
 * (stand-ins here); the pool attaches server i to GPU i on portRange.from + i; `gpufabric dev` drops image.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ComfyUiSchema, PoolSchema, type PlatformConfig, type PoolConfig } from "../../runtime/config/schema.ts";
import { parsePlatformConfig } from "../../runtime/config/index.ts";
import { InventoryError, discoverGpus } from "../../runtime/agent/inventory/index.ts";
import { ComfyServerPool, comfyUiForInventory } from "../../runtime/agent/executors/comfyui/index.ts";
import { localPlatform } from "../../runtime/agent/service/local-platform.ts";
import { startComfyStandin, type ComfyStandin } from "../support/comfyui-standin.ts";
import { freePorts } from "../support/free-ports.ts";
import { createPlatform, removePlatform } from "./service/harness.ts";
import { pino } from "pino";
import { WorkerRegistry } from "../../runtime/agent/cluster/registry.ts";
import { Scheduler } from "../../runtime/scheduler/scheduler.ts";
import { inventoryFromPools } from "../../runtime/scheduler/inventory.ts";
import { FileKeyring } from "../../runtime/security/crypto/index.ts";

const pool: PoolConfig = PoolSchema.parse({
  name: "l4",
  gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 24_576 },
  nodes: 1,
  gpusPerNode: 2,
  sharing: { mode: "exclusive" },
  devices: [
    { id: "l4-n0-g0", node: "n0", index: 0, memoryMiB: 24_576 },
    { id: "l4-n0-g1", node: "n0", index: 1, memoryMiB: 24_576 },
  ],
  nodeSelector: {},
  priorityClasses: { interactive: "i", batch: "b" },
  tenantQuotas: {},
});

const imageConfig = (from: number, to: number, startTimeoutMs = 10_000) => ComfyUiSchema.parse({ image: "studio/comfyui:v1", portRange: { from, to }, startTimeoutMs });

const standins: ComfyStandin[] = [];
afterAll(async () => {
  await Promise.all(standins.map((s) => s.close()));
});

describe("the ComfyUI servers' inventory (comfyui.image)", () => {
  it("makes one real GPU per port from each server's /system_stats, waiting for a server that starts late; the pool attaches server i to GPU i", async () => {
    const from = await freePorts(2);
    standins.push(await startComfyStandin({ port: from }), await startComfyStandin({ port: from + 1, startDelayMs: 800 }));
    const started = Date.now();
    // Image mode takes precedence over nvidia-smi: this container holds none of the GPUs.
    const inventory = await discoverGpus({ pool, mode: "nvidia-smi", node: "n0", comfyui: imageConfig(from, from + 1) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(inventory.source).toBe("comfyui");
    expect(inventory.nvidiaSmi).toBeUndefined();
    // The stand-in reports 24 GiB with 20 GiB free, named as ComfyUI names a device ("cuda:0 <product>").
    expect(inventory.devices).toEqual([0, 1].map((i) => ({ id: `n0-g${i}`, uuid: null, node: "n0", index: i, name: "stand-in", memoryMiB: 24_576, memoryUsedMiB: 4_096, simulated: false, heldBy: "comfyui" })));

    const config = comfyUiForInventory(imageConfig(from, from + 1), inventory.source)!;
    const comfy = new ComfyServerPool({ config, gpus: inventory.devices.map((d) => ({ id: d.id, index: d.index })) });
    comfy.start();
    try {
      expect([...comfy.servers.values()].map((s) => [s.gpu.id, s.url])).toEqual([
        ["n0-g0", `http://127.0.0.1:${from}`],
        ["n0-g1", `http://127.0.0.1:${from + 1}`],
      ]);
      expect(await comfy.serverFor({ id: "n0-g1" })!.whenReady(5_000)).toBe(true);
    } finally {
      await comfy.stop();
    }
  });

  it("refuses, naming comfyui.image, comfyui.portRange and the ports, when a server never answers", async () => {
    const from = await freePorts(2);
    standins.push(await startComfyStandin({ port: from }));
    const started = Date.now();
    const refused = await discoverGpus({ pool, node: "n0", comfyui: imageConfig(from, from + 1, 1_000) }).catch((err: Error) => err);
    expect(refused).toBeInstanceOf(InventoryError);
    expect((refused as Error).message).toMatch(new RegExp(`comfyui\\.image is set.*comfyui\\.portRange ${from}-${from + 1} \\(tried ${from}, ${from + 1}\\).*1 of 2 did not answer GET /system_stats with a GPU within 1000 ms \\(port ${from + 1}: ECONNREFUSED\\)`));
    expect((refused as Error).message).toContain("raise comfyui.startTimeoutMs");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("with simulated devices asked for, keeps the pool's devices simulated and attaches no server", async () => {
    const inventory = await discoverGpus({ pool, mode: "simulated", comfyui: imageConfig(8190, 8191) });
    expect(inventory.source).toBe("simulated");
    expect(inventory.devices.every((d) => d.simulated)).toBe(true);
    expect(comfyUiForInventory(imageConfig(8190, 8191), inventory.source)).toBeNull();
    // Other modes are left as they are.
    const command = ComfyUiSchema.parse({ command: ["x", "{port}"] });
    expect(comfyUiForInventory(command, "simulated")).toBe(command);
  });
});

describe("gpufabric dev's local platform", () => {
  it("drops comfyui.image (no containers on a laptop): ComfyUI stages run simulated", () => {
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }], comfyui: imageConfig(8190, 8190) });
    const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-local-"));
    try {
      const config: PlatformConfig = parsePlatformConfig(JSON.parse(readFileSync(platform.configFile, "utf8")));
      expect(config.comfyui?.image).toBe("studio/comfyui:v1");
      expect(localPlatform([config], dataDir, 0).config.comfyui).toBeNull();
      const attached = { ...config, comfyui: ComfyUiSchema.parse({ servers: [{ gpu: "0", url: "http://127.0.0.1:8188" }] }) };
      expect(localPlatform([attached], dataDir, 0).config.comfyui).toEqual(attached.comfyui);
    } finally {
      removePlatform(platform);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("a worker's ComfyUI-held GPUs at the leader", () => {
  it("are real (not simulated) and held by ComfyUI, while a simulated report stays simulated", () => {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-registry-"));
    try {
      const registry = new WorkerRegistry({
        pool,
        scheduler: new Scheduler({ gpus: inventoryFromPools([pool]) }),
        epoch: 1,
        leaseMs: 1000,
        sharedDir: join(dir, "shared"),
        keys: FileKeyring.create(join(dir, "keyring")),
        logger: pino({ level: "silent" }),
        audit: () => undefined,
        onChange: () => undefined,
      });
      registry.register("worker-a", {
        protocol: 1,
        node: "n0",
        // What a worker in image mode reports: the servers' GPUs, real, with no UUID; then one simulated.
        devices: [
          { index: 0, uuid: null, name: "NVIDIA L4", memoryMiB: 24_576, memoryUsedMiB: 300, simulated: false },
          { index: 1, uuid: null, name: "L4-24GB", memoryMiB: 24_576, simulated: true },
        ],
        residentModels: [],
        isolation: { sandbox: "per-tenant", unsafe: false },
      });
      expect(registry.devices.map((d) => [d.id, d.uuid, d.simulated, "heldBy" in d ? d.heldBy : undefined])).toEqual([
        ["l4-n0-g0", null, false, "comfyui"],
        ["l4-n0-g1", null, true, undefined],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
