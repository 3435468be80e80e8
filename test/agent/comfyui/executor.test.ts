/**
 * The comfyui executor against stand-in ComfyUI servers attached by URL (one per simulated GPU): a
 * two-segment prompt handed from one server to the other, the relay of live events, the checks made
 * before a prompt is sent, node failures, out-of-memory errors, a server lost mid-prompt, and cancel.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { parseWorkflow, type Stage } from "../../../runtime/graph/index.ts";
import {
  COMFY_OUTPUTS_ARTIFACT,
  ComfyRelay,
  ComfyServerPool,
  ComfyUiExecutor,
  uploadPrefix,
  type ComfyOutputsManifest,
  type ComfyRelayMessage,
} from "../../../runtime/agent/executors/comfyui/index.ts";
import type { AttemptInput, AttemptOutcome, CommittedArtifact } from "../../../runtime/agent/executors/types.ts";
import { makePng, pngInfo, startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { segmented, twoSegmentPrompt } from "./fixtures.ts";

const GPU_MIB = 24_576;

describe("comfyui executor on stand-in servers", () => {
  let dir: string;
  const servers: Record<string, ComfyStandin> = {};
  let pool: ComfyServerPool;
  let relay: ComfyRelay;
  let executor: ComfyUiExecutor;
  const messages: ComfyRelayMessage[] = [];
  let attempts = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gpufabric-comfy-exec-"));
    servers.g0 = await startComfyStandin({ nodeDelayMs: 2 });
    servers.g1 = await startComfyStandin({ nodeDelayMs: 2 });
    servers.fail = await startComfyStandin({ nodeDelayMs: 2, failNode: { class_type: "KSampler", exception_type: "RuntimeError", message: "mat1 and mat2 shapes cannot be multiplied" } });
    servers.oom = await startComfyStandin({ nodeDelayMs: 2, failNode: { class_type: "KSampler", exception_type: "torch.OutOfMemoryError", message: "Allocation on device" } });
    servers.slow = await startComfyStandin({ nodeDelayMs: 400 });
    servers.crash = await startComfyStandin({ nodeDelayMs: 400 });
    servers.extra = await startComfyStandin({ models: { checkpoints: ["v1-5-pruned-emaonly.safetensors", "only-here.safetensors"] }, objectInfo: { OnlyHereNode: { output: ["IMAGE"] } } });
    const ids = Object.keys(servers);
    const config = ComfyUiSchema.parse({ servers: ids.map((gpu) => ({ gpu, url: servers[gpu]!.url })), startTimeoutMs: 5_000 });
    pool = new ComfyServerPool({ config, gpus: ids.map((id, index) => ({ id, index, memoryMiB: GPU_MIB })) });
    pool.start();
    relay = new ComfyRelay();
    relay.on("message", (m) => messages.push(m));
    executor = new ComfyUiExecutor({ dataDir: dir, pool, relay, lostPolls: 2, lostPollMs: 50 });
  });
  afterAll(async () => {
    await pool?.stop();
    await Promise.all(Object.values(servers).map((s) => s.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(stage: Stage, gpu: string, prompt: unknown, inputs: AttemptInput[] = [], runInputsValue?: Record<string, unknown>) {
    const graph = parseWorkflow(prompt);
    return executor.start({
      attemptId: `attempt-${++attempts}`,
      runId: "run-1",
      stageId: stage.id,
      number: attempts,
      stage,
      gpus: [{ id: gpu, uuid: null, simulated: true }],
      inputs,
      comfy: { nodes: graph.comfyNodes! },
      ...(runInputsValue && { runInputsValue }),
    });
  }

  it("runs a two-segment prompt across two servers: the image crosses by SaveImage → /view → /upload/image → LoadImage, and comes back with its manifest", async () => {
    const prompt = twoSegmentPrompt();
    const { sample, upscale } = segmented(prompt);
    const first = await start(sample, "g0", prompt);
    const firstOutcome = await first.done;
    expect(firstOutcome.reason, firstOutcome.message).toBe("completed");
    expect(firstOutcome.simulated).toBe(false);
    // ComfyUI keeps what it loaded: the checkpoint is resident on g0 now.
    expect(firstOutcome.residentModels).toEqual(["v1-5-pruned-emaonly.safetensors"]);
    const handed = await first.commitOutputs();
    const handoff = handed.find((a) => a.name.startsWith("gf-handoff-8-0_"));
    expect(handoff, handed.map((a) => a.name).join(", ")).toBeDefined();
    expect(pngInfo(readFileSync(handoff!.path))).toMatchObject({ width: 64, height: 64 });
    // The first segment's own nodes wrote no UI output: its manifest lists none, and never the gf- nodes.
    const firstManifest = JSON.parse(readFileSync(handed.find((a) => a.name === COMFY_OUTPUTS_ARTIFACT)!.path, "utf8")) as ComfyOutputsManifest;
    expect(firstManifest.nodes).toEqual({});
    expect(firstManifest.executed).toEqual(expect.arrayContaining(["3", "4", "8"]));
    expect(firstManifest.executed.some((id) => id.startsWith("gf-"))).toBe(false);

    messages.length = 0;
    const inputs: AttemptInput[] = [{ stageId: sample.id, artifacts: handed.map((a: CommittedArtifact) => ({ name: a.name, path: a.path })) }];
    const second = await start(upscale, "g1", prompt, inputs);
    const outcome = await second.done;
    expect(outcome.reason, outcome.message).toBe("completed");
    // Uploaded to g1 under a name of this attempt only.
    const uploaded = servers.g1!.uploads();
    expect(uploaded).toEqual([`${uploadPrefix(second.attemptId)}${handoff!.name}`]);
    const artifacts = await second.commitOutputs();
    const manifest = JSON.parse(readFileSync(artifacts.find((a) => a.name === COMFY_OUTPUTS_ARTIFACT)!.path, "utf8")) as ComfyOutputsManifest;
    const image = (manifest.nodes["9"] as { images: Array<{ filename: string; subfolder: string; type: string; artifact: string }> }).images[0]!;
    expect(image).toMatchObject({ subfolder: "", type: "output" });
    expect(image.artifact).toBe(image.filename);
    const png = readFileSync(artifacts.find((a) => a.name === image.artifact)!.path);
    // 64×64 decoded on g0, upscaled 4× on g1, from the file uploaded there.
    expect(pngInfo(png)).toEqual({ width: 256, height: 256, text: `node=9;source=input:${uploaded[0]};size=256x256` });
    expect(manifest.executed).toEqual(expect.arrayContaining(["9", "10", "11"]));

    // The relay: this attempt's own nodes only, without the server's prompt_id.
    const mine = messages.filter((m) => m.attemptId === second.attemptId);
    expect(mine.map((m) => m.type)).toEqual(expect.arrayContaining(["execution_cached", "executing", "executed"]));
    for (const m of mine) {
      expect(m).toMatchObject({ runId: "run-1", stageId: upscale.id });
      expect(m.data).not.toHaveProperty("prompt_id");
      const node = m.data.node;
      if (node !== undefined) expect(["9", "10", "11"]).toContain(node);
    }
    expect(mine.find((m) => m.type === "executed")!.data).toMatchObject({ node: "9", output: { images: [{ filename: image.filename }] } });
  });

  it("completes a segment that feeds no output node without sending it (ComfyUI would refuse it: prompt_no_outputs)", async () => {
    // A checkpoint loaded for nothing: the segment has no output node and hands nothing on.
    const prompt = { "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "v1-5-pruned-emaonly.safetensors" } } };
    const graph = parseWorkflow(prompt);
    const stage: Stage = { id: "4", needs: [], resources: { gpus: 1, vramMiB: 1024 }, comfyNodes: ["4"] };
    const before = servers.g0!.prompts().length;
    const handle = await start(stage, "g0", prompt);
    const outcome = await handle.done;
    expect(outcome.reason, outcome.message).toBe("completed");
    expect(outcome.message).toMatch(/no output/);
    expect(servers.g0!.prompts().length).toBe(before);
    const committed = await handle.commitOutputs();
    expect(committed.map((a) => a.name)).toEqual([COMFY_OUTPUTS_ARTIFACT]);
    const manifest = JSON.parse(readFileSync(committed[0]!.path, "utf8")) as ComfyOutputsManifest;
    expect(manifest).toEqual({ version: 1, nodes: {}, executed: [], cached: [] });
    expect(graph.comfyNodes).toHaveLength(1);
  });

  it("fails before dispatch when the server lacks a model or a node class, naming node, class and what is missing", async () => {
    const prompt = twoSegmentPrompt("sdxl-missing.safetensors");
    const { sample } = segmented(prompt);
    const before = servers.g0!.prompts().length;
    const outcome = await (await start(sample, "g0", prompt)).done;
    expect(outcome.reason).toBe("setup-failed");
    expect(outcome.message).toMatch(/nothing was sent/);
    expect(outcome.message).toMatch(/node 4 \(CheckpointLoaderSimple\): ckpt_name 'sdxl-missing\.safetensors' is not on the ComfyUI server for gpu g0/);
    expect(servers.g0!.prompts()).toHaveLength(before);

    const custom = { ...twoSegmentPrompt(), "12": { class_type: "FancyCustomSharpen", inputs: { image: ["8", 0] } } };
    const withCustom = { id: "whole", needs: [], resources: { gpus: 1, vramMiB: 1000 }, comfyNodes: Object.keys(custom) } satisfies Stage;
    const refused = await (await start(withCustom, "g0", custom)).done;
    expect(refused.reason).toBe("setup-failed");
    expect(refused.message).toMatch(/node 12: class 'FancyCustomSharpen' is not installed on the ComfyUI server for gpu g0/);
    expect(servers.g0!.prompts()).toHaveLength(before);
  });

  it("turns ComfyUI's 400 node_errors into a failure naming each node, class and error", async () => {
    const prompt = twoSegmentPrompt();
    const { seed: _dropped, ...inputs } = prompt["3"]!.inputs;
    prompt["3"] = { class_type: "KSampler", inputs };
    const { sample } = segmented(prompt);
    const outcome = await (await start(sample, "g0", prompt)).done;
    expect(outcome.reason).toBe("setup-failed");
    expect(outcome.message).toMatch(/refused the prompt: prompt_outputs_failed_validation/);
    expect(outcome.message).toMatch(/node 3 \(KSampler\): required_input_missing: Required input is missing \(seed\)/);
  });

  it("turns an execution_error into a failure naming node, class and exception", async () => {
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const outcome = await (await start(sample, "fail", prompt)).done;
    expect(outcome.reason).toBe("exit-code");
    expect(outcome.message).toBe("the ComfyUI server for gpu fail: node 3 (KSampler) raised RuntimeError: mat1 and mat2 shapes cannot be multiplied");
    expect(outcome.peakVramMiB).toBeUndefined();
  });

  it("records an out-of-memory error as such, with the GPU's whole memory as the peak, and nothing resident after", async () => {
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const outcome: AttemptOutcome = await (await start(sample, "oom", prompt)).done;
    expect(outcome.reason).toBe("exit-code");
    expect(outcome.message).toMatch(/node 3 \(KSampler\) raised torch\.OutOfMemoryError: Allocation on device \(out of memory on the GPU/);
    expect(outcome.message).not.toMatch(/TIPS/);
    expect(outcome.peakVramMiB).toBe(GPU_MIB);
    expect(outcome.residentModels).toEqual([]);
  });

  it("uploads a client's images (run inputs comfyui.uploads) under their names before the prompt", async () => {
    const prompt = {
      "1": { class_type: "LoadImage", inputs: { image: "portrait.png" } },
      "2": { class_type: "UpscaleModelLoader", inputs: { model_name: "RealESRGAN_x4plus.pth" } },
      "3": { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["2", 0], image: ["1", 0] } },
      "4": { class_type: "SaveImage", inputs: { filename_prefix: "up", images: ["3", 0] } },
    };
    const graph = parseWorkflow(prompt);
    const stage = { id: "whole", needs: [], resources: { gpus: 1, vramMiB: 1000 }, comfyNodes: ["1", "2", "3", "4"] } satisfies Stage;
    const handle = await executor.start({
      attemptId: `attempt-${++attempts}`,
      runId: "run-2",
      stageId: stage.id,
      number: 1,
      stage,
      gpus: [{ id: "g1", uuid: null, simulated: true }],
      inputs: [],
      comfy: { nodes: graph.comfyNodes! },
      runInputsValue: { comfyui: { uploads: { "portrait.png": makePng(10, 12, "client").toString("base64") } } },
    });
    const outcome = await handle.done;
    expect(outcome.reason, outcome.message).toBe("completed");
    expect(servers.g1!.uploads()).toContain("portrait.png");
    const artifacts = await handle.commitOutputs();
    const png = artifacts.find((a) => a.name.startsWith("up_"))!;
    expect(pngInfo(readFileSync(png.path))).toMatchObject({ width: 40, height: 48 });
  });

  it("cancel interrupts the prompt on its server by its prompt id and ends cancelled", async () => {
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const handle = await start(sample, "slow", prompt);
    await waitUntil(() => messages.some((m) => m.attemptId === handle.attemptId && m.type === "executing"));
    handle.cancel();
    const outcome = await handle.done;
    expect(outcome.reason).toBe("cancelled");
    const promptId = servers.slow!.prompts().at(-1)!;
    await waitUntil(() => servers.slow!.interruptTargets().includes(promptId));
    await expect(handle.commitOutputs()).rejects.toThrow(/only a completed attempt/);
  });

  it("stops a prompt at its timeout, interrupting it on the server", async () => {
    const quick = new ComfyUiExecutor({ dataDir: dir, pool, relay, defaultTimeoutS: 0.3 });
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const graph = parseWorkflow(prompt);
    const handle = await quick.start({
      attemptId: `attempt-${++attempts}`,
      runId: "run-3",
      stageId: sample.id,
      number: 1,
      stage: sample,
      gpus: [{ id: "slow", uuid: null, simulated: true }],
      inputs: [],
      comfy: { nodes: graph.comfyNodes! },
    });
    const outcome = await handle.done;
    expect(outcome).toMatchObject({ reason: "timeout", message: "stopped after its timeout of 0.3 s" });
    const promptId = servers.slow!.prompts().at(-1)!;
    await waitUntil(() => servers.slow!.interruptTargets().includes(promptId));
  });

  it("offers, as introspection, only the node classes and models every ready server has", async () => {
    await pool.serverFor({ id: "extra" })!.whenReady();
    const info = await pool.introspection.objectInfo();
    expect(info).toHaveProperty("KSampler");
    expect(info).not.toHaveProperty("OnlyHereNode");
    const models = await pool.introspection.models();
    expect(models?.checkpoints).toEqual(["v1-5-pruned-emaonly.safetensors"]);
  });

  it("fails, naming the GPU, when its server dies mid-prompt", async () => {
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const handle = await start(sample, "crash", prompt);
    await waitUntil(() => messages.some((m) => m.attemptId === handle.attemptId && m.type === "executing"));
    servers.crash!.crash();
    const outcome = await handle.done;
    expect(outcome.reason).toBe("exit-code");
    expect(outcome.message).toMatch(/^the ComfyUI server for gpu crash stopped: /);
    expect(outcome.residentModels).toEqual([]);
    expect(pool.serverFor({ id: "crash" })!.ready).toBe(false);
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
