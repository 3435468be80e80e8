/**
 * The real agent with `comfyui.command`: it starts a stand-in ComfyUI server per (simulated) GPU as a
 * process, runs a two-segment prompt across both GPUs, and gets the final image back as an artifact.
 * The first server to take a prompt crashes mid-prompt: the attempt fails, the pool starts the server
 * again, and the retry succeeds on it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { COMFY_OUTPUTS_ARTIFACT, type ComfyOutputsManifest } from "../../../runtime/agent/executors/comfyui/contract.ts";
import { pngInfo } from "../../support/comfyui-standin.ts";
import { REPO_ROOT, client, createPlatform, removePlatform, startAgentProcess, type AgentProcess, type TestPlatform } from "../service/harness.ts";
import { twoSegmentPrompt } from "./fixtures.ts";

const TIMEOUT = 90_000;

const standinCommand = (...extra: string[]) => [
  process.execPath,
  "--import",
  "tsx",
  join(REPO_ROOT, "test/support/comfyui-standin-cli.ts"),
  "--port",
  "{port}",
  "--gpu",
  "{gpu}",
  ...extra,
];

/** Two consecutive free loopback ports: the servers' port range. */
async function freePortPair(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 50; i++) {
    const from = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await free(from)) && (await free(from + 1))) return from;
  }
  throw new Error("no two free ports found");
}

describe("agent with ComfyUI servers it starts, one per GPU", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;
  let crashFile: string;
  let recordFile: string;

  beforeAll(async () => {
    const from = await freePortPair();
    // Set up so the two segments land on different GPUs: sampling (about 2.5 GiB) fits only local-g1;
    // the upscale (about 1.6 GiB) then prefers local-g0, which needs no eviction.
    platform = createPlatform({
      devices: [
        { id: "local-g0", node: "n0", memoryMiB: 2_000 },
        { id: "local-g1", node: "n0", memoryMiB: 3_000 },
      ],
      headroomMiB: 0,
      comfyui: ComfyUiSchema.parse({
        command: standinCommand("--node-delay-ms", "60", "--crash-once-file", "CRASH_FILE", "--record-file", "RECORD_FILE"),
        workingDir: REPO_ROOT,
        portRange: { from, to: from + 1 },
        startTimeoutMs: 30_000,
      }),
    });
    crashFile = join(platform.dir, "crashed");
    recordFile = join(platform.dir, "starts.log");
    // The platform's folder is known only now: the config file is rewritten with the paths.
    const configText = readFileSync(platform.configFile, "utf8").replace("CRASH_FILE", crashFile).replace("RECORD_FILE", recordFile);
    writeFileSync(platform.configFile, configText);
    agent = await startAgentProcess(platform);
    studio = client(agent.url, platform.tokens.studio!);
  }, TIMEOUT);
  afterAll(async () => {
    if (process.env.DEBUG_AGENT) console.log(agent?.output());
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "runs a two-segment prompt across both GPUs, retries the segment whose server crashed once it is restarted, and returns the image with its manifest",
    async () => {
      const submitted = await studio.post("/v1/runs", { workflow: twoSegmentPrompt() });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id, undefined, 60_000);
      expect(run.status, `${JSON.stringify(run.stages)}\n${agent.output().slice(-3000)}`).toBe("succeeded");
      const sample = run.stages.find((s: { id: string }) => s.id.startsWith("ksampler"));
      const upscale = run.stages.find((s: { id: string }) => s.id.startsWith("imageupscalewithmodel"));
      expect(sample.gpus).toEqual(["local-g1"]);
      expect(upscale.gpus).toEqual(["local-g0"]);
      // The server of local-g1 (CUDA index 1) crashed mid-prompt: a second attempt ran after its restart.
      expect(existsSync(crashFile)).toBe(true);
      expect(sample.attempts).toBe(2);
      expect(upscale.attempts).toBe(1);
      const starts = readFileSync(recordFile, "utf8").trim().split("\n");
      expect(starts.filter((l) => l.startsWith("start gpu=1 ")).length).toBe(2);
      expect(starts.filter((l) => l.startsWith("start gpu=0 ")).length).toBe(1);

      const names = run.artifacts.filter((a: { stage: string }) => a.stage === upscale.id).map((a: { name: string }) => a.name).sort();
      expect(names).toContain(COMFY_OUTPUTS_ARTIFACT);
      const manifestRes = await studio.get(`/v1/runs/${run.id}/artifacts/${COMFY_OUTPUTS_ARTIFACT}?stage=${upscale.id}`);
      expect(manifestRes.status).toBe(200);
      const manifest = manifestRes.body as ComfyOutputsManifest;
      const image = (manifest.nodes["9"] as { images: Array<{ filename: string; artifact: string }> }).images[0]!;
      expect(names).toContain(image.artifact);
      const png = await studio.raw(`/v1/runs/${run.id}/artifacts/${image.artifact}?stage=${upscale.id}`);
      expect(png.status).toBe(200);
      const info = pngInfo(Buffer.from(await png.arrayBuffer()));
      // Decoded at 64×64 on local-g1, handed over as a file, upscaled 4× on local-g0.
      expect(info?.width).toBe(256);
      expect(info?.height).toBe(256);
      expect(info?.text).toMatch(/^node=9;source=input:gf-[0-9a-f]{12}-gf-handoff-8-0_\d{5}_\.png;size=256x256$/);
      expect(run.simulated).toBe(true); // simulated GPUs, and labelled so
      // Each server reported what it holds after its prompt: the scheduler keeps one model on each.
      const gpus = (await studio.get("/v1/gpus")).body.gpus as Array<{ id: string; residentModels: string[] }>;
      expect(gpus.map((g) => [g.id, g.residentModels.length])).toEqual([["local-g0", 1], ["local-g1", 1]]);
    },
    TIMEOUT
  );
});

describe("agent with a ComfyUI server that runs out of memory", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;

  beforeAll(async () => {
    const from = await freePortPair();
    platform = createPlatform({
      devices: [{ id: "local-g0", node: "n0", memoryMiB: 4_000 }],
      headroomMiB: 0,
      comfyui: ComfyUiSchema.parse({
        command: standinCommand("--fail-class", "KSampler", "--fail-type", "torch.OutOfMemoryError", "--fail-message", "Allocation on device"),
        workingDir: REPO_ROOT,
        portRange: { from, to: from },
        startTimeoutMs: 30_000,
      }),
    });
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "fails the stage saying it ran out of memory, and the cost model learns the GPU's whole memory as its peak",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflow: twoSegmentPrompt() });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id, undefined, 60_000);
      expect(run.status).toBe("failed");
      const sample = run.stages.find((s: { id: string }) => s.id.startsWith("ksampler"));
      expect(sample.reason).toMatch(/^the ComfyUI server for gpu local-g0: node 3 \(KSampler\) raised torch\.OutOfMemoryError: Allocation on device \(out of memory/);
      const model = JSON.parse(readFileSync(join(platform.dataDir, "cost-model.json"), "utf8")) as { entries: Array<{ key: string; peakVramMiB: number; samples: number }> };
      const sampler = model.entries.find((e) => e.key.includes("KSampler"));
      expect(sampler, JSON.stringify(model.entries)).toBeDefined();
      expect(sampler!.samples).toBeGreaterThanOrEqual(1);
      expect(sampler!.peakVramMiB).toBeGreaterThan(0);
      // ComfyUI unloads everything after an OOM: the scheduler no longer counts the checkpoint as resident.
      const gpus = (await studio.get("/v1/gpus")).body.gpus as Array<{ id: string; residentModels: string[] }>;
      expect(gpus).toEqual([expect.objectContaining({ id: "local-g0", residentModels: [] })]);
    },
    TIMEOUT
  );
});
