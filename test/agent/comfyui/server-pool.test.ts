/**
 * The server pool in command mode: it starts the stand-in as a process per GPU with `{port}` and
 * `{gpu}` filled in, counts a server ready once /system_stats answers, starts a server that died
 * again (a new generation, its introspection read afresh), and ends the process group on stop.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { ComfyServerPool } from "../../../runtime/agent/executors/comfyui/index.ts";
import { REPO_ROOT } from "../service/harness.ts";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("ComfyUI server pool (command mode)", () => {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-comfy-pool-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("starts a server per GPU, restarts one that dies, and stops them all", async () => {
    const record = join(dir, "starts.log");
    const from = 20_000 + Math.floor(Math.random() * 30_000);
    const config = ComfyUiSchema.parse({
      command: [process.execPath, "--import", "tsx", join(REPO_ROOT, "test/support/comfyui-standin-cli.ts"), "--port", "{port}", "--gpu", "{gpu}", "--record-file", record],
      workingDir: REPO_ROOT,
      portRange: { from, to: from + 1 },
      startTimeoutMs: 30_000,
    });
    const pool = new ComfyServerPool({ config, gpus: [{ id: "a", index: 3 }, { id: "b", index: 5 }], backoffMs: 100 });
    try {
      pool.start();
      const a = pool.serverFor({ id: "a" })!;
      const b = pool.serverFor({ id: "zzz", index: 5 })!;
      expect(b.gpu.id).toBe("b");
      expect(await a.whenReady()).toBe(true);
      expect(await b.whenReady()).toBe(true);
      expect(a.url).toBe(`http://127.0.0.1:${from}`);
      expect(readFileSync(record, "utf8").split("\n").filter(Boolean).sort()).toEqual([`start gpu=3 port=${from}`, `start gpu=5 port=${from + 1}`]);
      expect(a.generation).toBe(1);
      const info = await pool.introspection.objectInfo();
      expect(info).toHaveProperty("KSampler");
      expect((await pool.introspection.models())?.checkpoints).toEqual(["v1-5-pruned-emaonly.safetensors"]);

      // Killed (as by the OOM killer): started again on the same port, a new generation.
      const first = pool.processOf("a")!;
      process.kill(first, "SIGKILL");
      await waitUntil(() => !a.ready);
      expect(await a.whenReady()).toBe(true);
      expect(a.generation).toBe(2);
      expect(pool.processOf("a")).not.toBe(first);
      expect(await a.objectInfo()).toHaveProperty("SaveImage");

      const pids = [pool.processOf("a")!, pool.processOf("b")!];
      await pool.stop();
      for (const pid of pids) expect(alive(pid)).toBe(false);
      expect(a.ready).toBe(false);
    } finally {
      await pool.stop();
    }
  }, 60_000);
});

async function waitUntil(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
