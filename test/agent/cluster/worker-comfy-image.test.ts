/**
 * A worker with `comfyui.image`: its GPUs are the ComfyUI server containers' beside it (stand-ins on
 * portRange here), reported to the leader as real GPUs without a UUID, and its pool attaches to them;
 * with simulated devices it attaches to none.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { loadPlatformConfig } from "../../../runtime/config/index.ts";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { clusterPlatform } from "../../../runtime/agent/cluster/local-cluster.ts";
import { WorkerNode } from "../../../runtime/agent/cluster/worker.ts";
import { startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { freePorts } from "../../support/free-ports.ts";
import { createPlatform, removePlatform, waitFor } from "../service/harness.ts";

const standins: ComfyStandin[] = [];
afterAll(async () => {
  await Promise.all(standins.map((s) => s.close()));
});

/** A control plane that records each registration and refuses it (the worker keeps trying). */
async function recordingControlPlane(): Promise<{ url: string; registrations: Array<Record<string, any>>; server: Server }> {
  const registrations: Array<Record<string, any>> = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/cluster/workers") registrations.push(JSON.parse(body));
      res.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ message: "not yet" }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, registrations, server };
}

describe("a worker with comfyui.image", () => {
  it("reports the servers' GPUs as real, without a UUID, and attaches its pool to them; with simulated devices, to none", async () => {
    const from = await freePorts(2);
    standins.push(await startComfyStandin({ port: from }), await startComfyStandin({ port: from + 1 }));
    const platform = createPlatform({
      devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }],
      comfyui: ComfyUiSchema.parse({ image: "studio/comfyui:v1", portRange: { from, to: from + 1 }, startTimeoutMs: 5_000 }),
    });
    const leader = await recordingControlPlane();
    const workers: WorkerNode[] = [];
    try {
      const config = clusterPlatform(loadPlatformConfig(platform.configFile), { dataDir: platform.dataDir, workers: 1, controlPlanes: 1, gpusPerWorker: 2 });
      const start = (inventory: "auto" | "simulated", node: string) =>
        WorkerNode.start({ config, controlPlanes: [leader.url], token: "t", node, dataDir: join(platform.dir, node), inventory, unsafeSharedIdentity: true, logger: pino({ level: "silent" }) });
      const worker = await start("auto", "box-a");
      workers.push(worker);
      const registration = await waitFor("box-a's registration", () => leader.registrations.find((r) => r.node === "box-a"), 10_000);
      expect(registration.devices).toEqual([0, 1].map((index) => ({ index, uuid: null, name: "stand-in", memoryMiB: 24_576, memoryUsedMiB: 4_096, simulated: false })));
      expect(worker.comfy).toBeDefined();

      const simulated = await start("simulated", "box-b");
      workers.push(simulated);
      const simulatedRegistration = await waitFor("box-b's registration", () => leader.registrations.find((r) => r.node === "box-b"), 10_000);
      expect(simulatedRegistration.devices.every((d: { simulated: boolean }) => d.simulated)).toBe(true);
      // No server stands behind simulated devices: ComfyUI stages run simulated there.
      expect(simulated.comfy).toBeUndefined();
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await new Promise<void>((r) => leader.server.close(() => r()));
      removePlatform(platform);
    }
  }, 60_000);
});
