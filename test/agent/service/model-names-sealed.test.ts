/**
 * Model names come from sealed documents (a ComfyUI prompt's ckpt_name, a native stage's model): the
 * store and the audit log keep only stand-ins, and a recovered run gets its names back from the document.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { openModelTags, isModelTag } from "../../../runtime/agent/service/model-tags.ts";
import { restoreStageRuns, sealRunFields } from "../../../runtime/agent/service/sealed-fields.ts";
import { openSqliteStore } from "../../../runtime/agent/store/index.ts";
import { parseWorkflow, type Stage } from "../../../runtime/graph/index.ts";
import { FileKeyring } from "../../../runtime/security/crypto/index.ts";
import { REPO_ROOT, client, createPlatform, removePlatform, startAgentProcess, waitFor } from "./harness.ts";

const TIMEOUT = 60_000;

/** The example ComfyUI prompt with its checkpoint and upscaler renamed to names no other file holds. */
function promptWith(checkpoint: string, upscaler: string): Record<string, unknown> {
  const prompt = JSON.parse(readFileSync(join(REPO_ROOT, "examples/comfyui/txt2img-upscale.json"), "utf8")) as Record<string, { class_type: string; inputs: Record<string, unknown> }>;
  for (const node of Object.values(prompt)) {
    if (node.class_type === "CheckpointLoaderSimple") node.inputs.ckpt_name = checkpoint;
    if (node.class_type === "UpscaleModelLoader") node.inputs.model_name = upscaler;
  }
  return prompt;
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...filesHolding(path, needle));
    else if (readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

describe("model names of sealed documents", () => {
  it(
    "never reach the data directory in plaintext: the store keeps stand-ins",
    async () => {
      const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 81_920 }] });
      const secret = `private-ckpt-${Date.now()}`;
      const checkpoint = `${secret}-sdxl.safetensors`;
      const upscaler = `${secret}-esrgan_x4.pth`;
      const agent = await startAgentProcess(platform);
      let id: string;
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const submitted = await studio.post("/v1/runs", { workflow: promptWith(checkpoint, upscaler) });
        expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
        id = submitted.body.id;
        // Placed at least once, so placement explanations and audit entries exist too.
        await waitFor("a stage to start", async () => (await studio.get(`/v1/runs/${id}`)).body.stages.some((s: { status: string }) => s.status !== "waiting" && s.status !== "ready"));
        expect((await studio.post(`/v1/runs/${id}/cancel`)).status).toBe(202);
      } finally {
        await agent.stop();
      }
      try {
        expect(filesHolding(platform.dataDir, secret)).toEqual([]);
        const store = openSqliteStore(join(platform.dataDir, "agent.db"));
        try {
          const detail = (await store.getRun("studio", id))!;
          const models = detail.stages.map((s) => s.spec.resources.model).filter((m) => m !== undefined);
          expect(models.length).toBeGreaterThan(0);
          for (const model of models) expect(isModelTag(model!), model).toBe(true);
        } finally {
          await store.close();
        }
      } finally {
        removePlatform(platform);
      }
    },
    TIMEOUT
  );

  it(
    "reach another tenant's GPU view only as stand-ins, while the tenant that loaded them sees its own names",
    async () => {
      const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 81_920 }] });
      const secret = `private-ckpt-${Date.now()}`;
      const agent = await startAgentProcess(platform, ["--simulated-time-scale", "20"]);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const rival = client(agent.url, platform.tokens.rival!);
        const submitted = await studio.post("/v1/runs", { workflow: promptWith(`${secret}-sdxl.safetensors`, `${secret}-esrgan_x4.pth`) });
        expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
        const resident = await waitFor("a model to be resident", async () => {
          const gpus = (await studio.get("/v1/gpus")).body.gpus as Array<{ residentModels: string[] }>;
          return gpus.some((g) => g.residentModels.length > 0) ? gpus : undefined;
        });
        expect(JSON.stringify(resident)).toContain(secret);
        const seenByRival = JSON.stringify((await rival.get("/v1/gpus")).body);
        expect(seenByRival).not.toContain(secret);
        expect(seenByRival).toContain("sealed-model:");
        await studio.post(`/v1/runs/${submitted.body.id}/cancel`);
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );

  it("are stand-ins that match for equal models, and are restored from the opened document", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-model-tags-"));
    try {
      const keyring = FileKeyring.create(join(dir, "keyring"));
      const logger = pino({ level: "silent" });
      const tags = await openModelTags(keyring, dir, logger);
      // Stable across restarts (the key is sealed in the data directory), different per model, never the name.
      expect((await openModelTags(keyring, dir, logger)).tag("a.safetensors")).toBe(tags.tag("a.safetensors"));
      expect(tags.tag("a.safetensors")).not.toBe(tags.tag("b.safetensors"));
      expect(tags.tag("a.safetensors")).not.toContain("a.safetensors");
      expect(tags.tag(tags.tag("a.safetensors"))).toBe(tags.tag("a.safetensors"));

      const graph = parseWorkflow(promptWith("own-sdxl.safetensors", "own-esrgan.pth"));
      const native: Stage = { id: "gen", needs: [], resources: { gpus: 1, vramMiB: 1024, model: "native-model-v1" } };
      const comfy: Stage = { id: "s1", needs: [], resources: { gpus: 1, vramMiB: 1024, model: "own-sdxl.safetensors" }, comfyNodes: graph.comfyNodes!.map((n) => n.id) };
      const sealed = await sealRunFields(keyring, { tenant: "t", workflow: "w", format: "comfyui", priority: "batch", document: {}, stages: [comfy] }, tags);
      const stored = sealed.stages[0]!;
      expect(stored.resources.model).toBe(tags.tag("own-sdxl.safetensors"));
      expect(restoreStageRuns([stored], graph, tags)).toEqual([comfy]);
      const nativeGraph = { name: "n", format: "native" as const, stages: [native] };
      expect(restoreStageRuns([{ ...native, resources: { ...native.resources, model: tags.tag("native-model-v1") } }], nativeGraph, tags)).toEqual([native]);
      // Not found in the document: the stand-in stays (it still matches the same model's stand-ins).
      const unknown = { ...native, resources: { ...native.resources, model: tags.tag("elsewhere") } };
      expect(restoreStageRuns([unknown], nativeGraph, tags)).toEqual([unknown]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
