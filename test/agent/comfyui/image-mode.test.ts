/**
 * The real agent with `comfyui.image`: the deployment's server containers hold the GPUs, so the agent
 * (with `--inventory auto`) reads its GPUs from the servers on portRange (stand-ins here, one starting
 * late) and runs a ComfyUI prompt on them for real; without the servers it refuses to start.
 */
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { REPO_ROOT, client, createPlatform, removePlatform, startAgentProcess, type AgentProcess, type TestPlatform } from "../service/harness.ts";
import { freePorts } from "../../support/free-ports.ts";
import { twoSegmentPrompt } from "./fixtures.ts";

const TIMEOUT = 90_000;
const devices = [
  { id: "local-g0", node: "n0", memoryMiB: 24_576 },
  { id: "local-g1", node: "n0", memoryMiB: 24_576 },
];
const image = (from: number, startTimeoutMs: number) => ComfyUiSchema.parse({ image: "studio/comfyui:v1", portRange: { from, to: from + 1 }, startTimeoutMs });

describe("agent with the ComfyUI server containers of comfyui.image", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let servers: ComfyStandin[] = [];

  beforeAll(async () => {
    const from = await freePorts(2);
    servers = [await startComfyStandin({ port: from, nodeDelayMs: 20 }), await startComfyStandin({ port: from + 1, nodeDelayMs: 20, startDelayMs: 1_500 })];
    platform = createPlatform({ devices, comfyui: image(from, 30_000) });
    // The harness asks for simulated devices; the last --inventory wins.
    agent = await startAgentProcess(platform, ["--inventory", "auto"]);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    await Promise.all(servers.map((s) => s.close()));
    if (platform) removePlatform(platform);
  });

  it(
    "takes its GPUs from the servers and runs a two-segment prompt on them for real, each segment on the server of its GPU",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const gpus = (await studio.get("/v1/gpus")).body;
      expect(gpus.source).toBe("comfyui");
      const node = hostname();
      expect(gpus.gpus.map((g: Record<string, unknown>) => [g.id, g.uuid, g.simulated, g.heldBy, g.memoryMiB])).toEqual([
        [`${node}-g0`, null, false, "comfyui", 24_576],
        [`${node}-g1`, null, false, "comfyui", 24_576],
      ]);

      const submitted = await studio.post("/v1/runs", { workflow: twoSegmentPrompt() });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id, undefined, 60_000);
      expect(run.status, `${JSON.stringify(run.stages)}\n${agent.output().slice(-3000)}`).toBe("succeeded");
      // Real GPUs and real servers: labelled so (a ComfyUI stage has no command, and is not simulated for it).
      expect(run.simulated).toBe(false);
      expect(run.stages.map((s: Record<string, unknown>) => [s.executor, s.simulated])).toEqual([["comfyui", false], ["comfyui", false]]);
      // GPU i is served on portRange.from + i: each segment's prompt went to its GPU's server.
      const prompts = servers.map((s) => s.prompts().length);
      const expected = [0, 0];
      for (const stage of run.stages as Array<{ gpus: string[] }>) expected[Number(stage.gpus[0]!.slice(`${node}-g`.length))]! += 1;
      expect(prompts).toEqual(expected);
      expect(run.artifacts.some((a: { name: string }) => a.name.endsWith(".png"))).toBe(true);
    },
    TIMEOUT
  );
});

describe("agent with comfyui.image whose servers do not answer", () => {
  it("refuses to start, naming comfyui.image, comfyui.portRange and the ports it tried", async () => {
    const from = await freePorts(2);
    const platform = createPlatform({ devices, comfyui: image(from, 1_000) });
    try {
      const args = ["bin/gpufabric.mjs", "agent", "--config", platform.configFile, "--data-dir", platform.dataDir, "--host", "127.0.0.1", "--port", "0"];
      const result = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
      expect(result.status, result.stderr).not.toBe(0);
      expect(result.stderr).toMatch(new RegExp(`comfyui\\.image is set.*comfyui\\.portRange ${from}-${from + 1} \\(tried ${from}, ${from + 1}\\).*2 of 2 did not answer`));
    } finally {
      removePlatform(platform);
    }
  }, TIMEOUT);
});
