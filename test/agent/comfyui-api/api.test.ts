/**
 * The ComfyUI-compatible API of a real agent process (stages simulated: no ComfyUI server here), driven
 * as ComfyUI's clients drive it: form-encoded JSON bodies, a WebSocket per client id, history and queue.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { useAgent } from "../service/agent-fixture.ts";
import { tenant } from "../service/harness.ts";
import { examplePrompt } from "./prompts.ts";

const fixture = useAgent(
  { devices: [{ id: "gpu0", node: "n1", memoryMiB: 81_920 }, { id: "gpu1", node: "n1", memoryMiB: 81_920 }], tenants: [tenant("studio"), tenant("rival")] },
  ["--simulated-time-scale", "0.002"],
);

function base(): string {
  return `${fixture.agent.url}/comfyui`;
}

async function post(path: string, body: unknown, token: string | undefined, contentType = "application/x-www-form-urlencoded") {
  const res = await fetch(`${base()}${path}`, {
    method: "POST",
    headers: { ...(token !== undefined && { authorization: `Bearer ${token}` }), "content-type": contentType },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as any) };
}

async function get(path: string, token: string) {
  const res = await fetch(`${base()}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as any };
}

/** Opens /ws as a client id and collects its JSON messages until `until` says stop. */
function follow(clientId: string, token: string, until: (m: { type: string; data: any }) => boolean): { ready: Promise<void>; done: Promise<Array<{ type: string; data: any }>> } {
  const ws = new WebSocket(`${base().replace("http", "ws")}/ws?clientId=${clientId}&token=${token}`);
  const messages: Array<{ type: string; data: any }> = [];
  const ready = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const done = new Promise<Array<{ type: string; data: any }>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no end after 30 s: ${JSON.stringify(messages.map((m) => m.type))}`)), 30_000);
    ws.on("message", (data, binary) => {
      if (binary) return;
      const m = JSON.parse(String(data)) as { type: string; data: any };
      messages.push(m);
      if (until(m)) {
        clearTimeout(timer);
        ws.close();
        resolve(messages);
      }
    });
  });
  return { ready, done };
}

describe("the ComfyUI-compatible API", () => {
  it("queues a form-encoded prompt, follows it over /ws to the final executing, and reads its history", async () => {
    const token = fixture.platform.tokens.studio!;
    const clientId = randomUUID();
    const promptId = randomUUID();
    const socket = follow(clientId, token, (m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === promptId);
    await socket.ready;
    const queued = await post("/prompt", { prompt: examplePrompt(), client_id: clientId, prompt_id: promptId }, token);
    expect(queued.status).toBe(200);
    expect(queued.body).toEqual({ prompt_id: promptId, number: expect.any(Number), node_errors: {} });
    const messages = await socket.done;
    const types = messages.map((m) => m.type);
    expect(types[0]).toBe("status");
    expect(types.indexOf("execution_start")).toBeGreaterThan(0);
    expect(types.indexOf("execution_cached")).toBe(types.indexOf("execution_start") + 1);
    expect(types.indexOf("executing")).toBeGreaterThan(types.indexOf("execution_cached"));
    expect(types.indexOf("execution_success")).toBeLessThan(types.lastIndexOf("executing"));
    expect(messages.at(-1)).toEqual({ type: "executing", data: { node: null, prompt_id: promptId } });

    const history = await get(`/history/${promptId}`, token);
    expect(history.status).toBe(200);
    const entry = history.body[promptId];
    expect(entry.prompt[1]).toBe(promptId);
    expect(entry.prompt[2]["9"].class_type).toBe("SaveImage");
    expect(entry.prompt[4]).toEqual(["9"]);
    expect(entry.status).toMatchObject({ status_str: "success", completed: true });
    expect(entry.status.messages.map((m: [string]) => m[0])).toEqual(["execution_start", "execution_cached", "execution_success"]);
    // Through the /api prefix too, as ComfyUI's web frontend calls it.
    expect((await get(`/api/history/${promptId}`, token)).body[promptId].prompt[1]).toBe(promptId);
    // Another tenant sees none of it.
    expect((await get(`/history/${promptId}`, fixture.platform.tokens.rival!)).body).toEqual({});
    const all = await get("/history?max_items=1", token);
    expect(Object.keys(all.body)).toEqual([promptId]);
  });

  it("refuses bad prompts in ComfyUI's error shapes", async () => {
    const token = fixture.platform.tokens.studio!;
    const noPrompt = await post("/prompt", { client_id: "x" }, token);
    expect(noPrompt.status).toBe(400);
    expect(noPrompt.body).toEqual({ error: { type: "no_prompt", message: "No prompt provided", details: "No prompt provided", extra_info: {} }, node_errors: {} });

    const noClass = await post("/prompt", { prompt: { "1": { inputs: {} } } }, token);
    expect(noClass.body.error).toMatchObject({ type: "invalid_prompt", message: "Cannot execute because a node is missing the class_type property.", details: "Node ID '#1'" });

    const noOutputs = await post("/prompt", { prompt: { "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "a.safetensors" } } } }, token);
    expect(noOutputs.body.error.type).toBe("prompt_no_outputs");

    const dangling = examplePrompt();
    (dangling["8"] as { inputs: Record<string, unknown> }).inputs.samples = ["99", 0];
    const failed = await post("/prompt", { prompt: dangling }, token);
    expect(failed.status).toBe(400);
    expect(failed.body.error.type).toBe("prompt_outputs_failed_validation");
    expect(failed.body.node_errors["8"]).toMatchObject({ class_type: "VAEDecode", dependent_outputs: ["9"], errors: [{ type: "bad_linked_input", details: "samples" }] });

    const badId = await post("/prompt", { prompt: examplePrompt(), prompt_id: "not-a-uuid" }, token);
    expect(badId.body.error.type).toBe("invalid_prompt_id");

    const missingUpload = await post("/prompt", { prompt: { "1": { class_type: "LoadImage", inputs: { image: "nowhere.png" } }, "2": { class_type: "PreviewImage", inputs: { images: ["1", 0] } } } }, token);
    expect(missingUpload.body.node_errors["1"].errors[0]).toMatchObject({ type: "custom_validation_failed", details: "image - Invalid image file: nowhere.png" });

    expect((await post("/prompt", { prompt: examplePrompt() }, undefined)).status).toBe(401);
  });

  it("takes HTTP basic credentials with the token as password, and answers GET /prompt, /queue, /features and /system_stats", async () => {
    const token = fixture.platform.tokens.studio!;
    const res = await fetch(`${base()}/prompt`, { headers: { authorization: `Basic ${Buffer.from(`anyone:${token}`).toString("base64")}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ exec_info: { queue_remaining: expect.any(Number) } });
    expect((await get("/queue", token)).body).toEqual({ queue_running: expect.any(Array), queue_pending: expect.any(Array) });
    expect((await get("/features", token)).body).toMatchObject({ supports_preview_metadata: true, max_upload_size: expect.any(Number) });
    const stats = (await get("/system_stats", token)).body;
    expect(stats.devices).toHaveLength(2);
    expect(stats.devices[0]).toMatchObject({ type: "cuda", vram_total: 81_920 * 1024 * 1024 });
  });

  it("uploads an image for a LoadImage node, serves it back with /view, and refuses traversal", async () => {
    const token = fixture.platform.tokens.studio!;
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201a3b6f0560000000049454e44ae426082", "hex");
    const form = new FormData();
    form.append("image", new Blob([png], { type: "image/png" }), "pose.png");
    form.append("overwrite", "true");
    const up = await fetch(`${base()}/upload/image`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ name: "pose.png", subfolder: "", type: "input" });
    const view = await fetch(`${base()}/view?filename=pose.png&type=input`, { headers: { authorization: `Bearer ${token}` } });
    expect(view.status).toBe(200);
    expect(Buffer.from(await view.arrayBuffer()).equals(png)).toBe(true);
    const other = await fetch(`${base()}/view?filename=pose.png&type=input`, { headers: { authorization: `Bearer ${fixture.platform.tokens.rival}` } });
    expect(other.status).toBe(404);
    const climb = await fetch(`${base()}/view?filename=../../etc/passwd&type=input`, { headers: { authorization: `Bearer ${token}` } });
    expect(climb.status).toBe(400);

    const queued = await post("/prompt", { prompt: { "1": { class_type: "LoadImage", inputs: { image: "pose.png" } }, "2": { class_type: "PreviewImage", inputs: { images: ["1", 0] } } } }, token);
    expect(queued.status).toBe(200);
  });
  it("lists running and pending prompts, deletes a pending one, interrupts a running one, and hides history on request", async () => {
    const token = fixture.platform.tokens.studio!;
    const clientId = randomUUID();
    // Sampling this many steps takes the simulated stages long enough to watch them queue.
    const long = (seed: number) => {
      const p = examplePrompt(seed);
      (p["3"] as { inputs: Record<string, unknown> }).inputs.steps = 400_000;
      return p;
    };
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const socket = follow(clientId, token, (m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === ids[0]);
    await socket.ready;
    for (const [i, id] of ids.entries()) {
      const res = await post("/prompt", { prompt: long(i), prompt_id: id, client_id: clientId, extra_data: { gpufabric: { priority: "interactive" } } }, token);
      expect(res.status).toBe(200);
    }
    const run = await fetch(`${fixture.agent.url}/v1/runs/${ids[0]}`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await run.json()) as { priority: string }).priority).toBe("interactive");
    let queue = (await get("/queue", token)).body;
    for (let i = 0; i < 100 && queue.queue_running.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      queue = (await get("/queue", token)).body;
    }
    expect(queue.queue_running.map((item: unknown[]) => item[1]).sort()).toEqual([ids[0], ids[1]].sort());
    expect(queue.queue_pending.map((item: unknown[]) => item[1])).toEqual([ids[2]]);
    expect(queue.queue_pending[0][2]["9"].class_type).toBe("SaveImage");

    expect((await post("/queue", { delete: [ids[2]] }, token)).status).toBe(200);
    expect((await post("/interrupt", { prompt_id: ids[0] }, token)).status).toBe(200);
    const messages = await socket.done;
    const types = messages.filter((m) => m.data?.prompt_id === ids[0]).map((m) => m.type);
    expect(types.slice(-2)).toEqual(["execution_interrupted", "executing"]);
    const entry = (await get(`/history/${ids[0]}`, token)).body[ids[0]!];
    expect(entry.status).toMatchObject({ status_str: "error", completed: false });
    expect(entry.status.messages.at(-1)[0]).toBe("execution_interrupted");
    // Deleted from the queue before it ran: no history, as in ComfyUI.
    expect((await get(`/history/${ids[2]}`, token)).body).toEqual({});
    expect((await post("/interrupt", { prompt_id: ids[1] }, token)).status).toBe(200);

    expect((await post("/history", { delete: [ids[0]] }, token)).status).toBe(200);
    expect((await get(`/history/${ids[0]}`, token)).body).toEqual({});
    expect(Object.keys((await get("/history", token)).body)).not.toContain(ids[0]);
    expect((await post("/history", { clear: true }, token)).status).toBe(200);
    expect((await get("/history", token)).body).toEqual({});
  });
});
