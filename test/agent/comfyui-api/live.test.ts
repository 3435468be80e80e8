/**
 * The live side of /comfyui/ws with stages on stand-in ComfyUI servers: sampler progress and previews
 * relayed from the server (binary event 1, or event 4 with metadata naming our prompt after the
 * feature-flags handshake), `executed` naming files as /view serves them, and what the servers offer
 * (/object_info, models checked at POST /prompt).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { pngInfo, startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { createPlatform, removePlatform, startAgentProcess, tenant, type AgentProcess, type TestPlatform } from "../service/harness.ts";
import { examplePrompt } from "./prompts.ts";

interface Received {
  json: Array<{ type: string; data: any }>;
  binary: Buffer[];
}

describe("/comfyui/ws with stages on stand-in ComfyUI servers", () => {
  let standin: ComfyStandin;
  let platform: TestPlatform;
  let agent: AgentProcess;

  beforeAll(async () => {
    standin = await startComfyStandin({ models: { checkpoints: ["v1-5-pruned-emaonly.safetensors"] }, nodeDelayMs: 20 });
    platform = createPlatform({
      devices: [{ id: "gpu0", node: "n1", memoryMiB: 81_920 }],
      tenants: [tenant("studio")],
      comfyui: { mode: "segmented", servers: [{ gpu: "gpu0", url: standin.url }], portRange: { from: 8190, to: 8253 }, startTimeoutMs: 10_000 },
    });
    agent = await startAgentProcess(platform);
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await standin?.close();
    if (platform) removePlatform(platform);
  });

  const token = () => platform.tokens.studio!;
  const base = () => `${agent.url}/comfyui`;

  async function queueAndFollow(metadata: boolean): Promise<{ id: string; got: Received }> {
    const clientId = randomUUID();
    const id = randomUUID();
    const ws = new WebSocket(`${base().replace("http", "ws")}/api/ws?clientId=${clientId}`, { headers: { authorization: `Bearer ${token()}` } });
    const got: Received = { json: [], binary: [] };
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no end: ${got.json.map((m) => m.type).join(",")}`)), 30_000);
      ws.on("message", (data, binary) => {
        if (binary) return void got.binary.push(Buffer.from(data as Buffer));
        const m = JSON.parse(String(data)) as { type: string; data: any };
        got.json.push(m);
        if (m.type === "executing" && m.data.node === null && m.data.prompt_id === id) {
          clearTimeout(timer);
          ws.close();
          resolve();
        }
      });
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    if (metadata) ws.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
    const res = await fetch(`${base()}/api/prompt`, {
      method: "POST",
      headers: { authorization: `Bearer ${token()}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: examplePrompt(7), prompt_id: id, client_id: clientId }),
    });
    expect(res.status).toBe(200);
    await done;
    return { id, got };
  }

  it("relays the server's progress and previews, and names the outputs as /view serves them", async () => {
    const { id, got } = await queueAndFollow(false);
    const progress = got.json.filter((m) => m.type === "progress");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((m) => m.data.prompt_id === id && m.data.node === "3" && m.data.max === 20)).toBe(true);
    const executing = got.json.filter((m) => m.type === "executing" && m.data.node !== null).map((m) => m.data.node);
    expect(executing).toContain("3");
    expect(executing.some((n: string) => n.startsWith("gf-"))).toBe(false);

    expect(got.binary.length).toBe(progress.length);
    for (const frame of got.binary) {
      expect(frame.readUInt32BE(0)).toBe(1); // PREVIEW_IMAGE
      expect(frame.readUInt32BE(4)).toBe(2); // PNG
      expect(pngInfo(frame.subarray(8))).toMatchObject({ width: 8, height: 8 });
    }

    const executed = got.json.find((m) => m.type === "executed");
    expect(executed?.data).toMatchObject({ node: "9", prompt_id: id });
    const image = executed!.data.output.images[0];
    expect(image).toMatchObject({ subfolder: id, type: "output" });
    expect(image.filename).toMatch(/^ComfyUI_\d{5}_\.png$/);
    const view = await fetch(`${base()}/view?${new URLSearchParams({ filename: image.filename, subfolder: image.subfolder, type: image.type })}`, { headers: { authorization: `Bearer ${token()}` } });
    expect(view.status).toBe(200);
    expect(view.headers.get("content-type")).toBe("image/png");
    expect(pngInfo(Buffer.from(await view.arrayBuffer()))?.width).toBeGreaterThan(8);
  }, 60_000);

  it("sends previews with metadata naming our prompt to a client that asked for it", async () => {
    const { id, got } = await queueAndFollow(true);
    expect(got.json.some((m) => m.type === "feature_flags" && m.data.supports_preview_metadata === true)).toBe(true);
    expect(got.binary.length).toBeGreaterThan(0);
    for (const frame of got.binary) {
      expect(frame.readUInt32BE(0)).toBe(4); // PREVIEW_IMAGE_WITH_METADATA
      const length = frame.readUInt32BE(4);
      const meta = JSON.parse(frame.subarray(8, 8 + length).toString("utf8")) as Record<string, unknown>;
      expect(meta).toMatchObject({ prompt_id: id, image_type: "image/png" });
      expect(pngInfo(frame.subarray(8 + length))).toMatchObject({ width: 8 });
    }
  }, 60_000);

  it("offers what the servers offer, and refuses a prompt naming a model none has", async () => {
    const info = (await (await fetch(`${base()}/object_info/KSampler`, { headers: { authorization: `Bearer ${token()}` } })).json()) as Record<string, { input: unknown }>;
    expect(Object.keys(info)).toEqual(["KSampler"]);
    const models = (await (await fetch(`${base()}/models/checkpoints`, { headers: { authorization: `Bearer ${token()}` } })).json()) as string[];
    expect(models).toEqual(["v1-5-pruned-emaonly.safetensors"]);
    const prompt = examplePrompt();
    (prompt["4"] as { inputs: Record<string, unknown> }).inputs.ckpt_name = "not-there.safetensors";
    const res = await fetch(`${base()}/prompt`, { method: "POST", headers: { authorization: `Bearer ${token()}` }, body: JSON.stringify({ prompt }) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { type: string }; node_errors: Record<string, { errors: Array<{ type: string; details: string }> }> };
    expect(body.error.type).toBe("prompt_outputs_failed_validation");
    expect(body.node_errors["4"]!.errors[0]).toMatchObject({ type: "value_not_in_list" });
    expect(body.node_errors["4"]!.errors[0]!.details).toContain("not-there.safetensors");
  }, 30_000);
});
