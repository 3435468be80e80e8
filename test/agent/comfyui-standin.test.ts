import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketClient, makePng, pngInfo, startComfyStandin, type ComfyStandin, type StandinOptions } from "../support/comfyui-standin.ts";
import { sharedDataDir } from "../support/shared.ts";

// The stand-in is what the `comfyui` executor is tested against, so its protocol (orderings, error
// shapes, crashes, slow starts) is checked here with real clients: Node's `ws` and fetch.

interface Msg { type: string; data: Record<string, unknown> }

const txt2img = (ckpt = "v1-5-pruned-emaonly.safetensors") => ({
  "3": { class_type: "KSampler", inputs: { seed: 1, steps: 20, cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
  "4": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: ckpt } },
  "5": { class_type: "EmptyLatentImage", inputs: { width: 512, height: 384, batch_size: 1 } },
  "6": { class_type: "CLIPTextEncode", inputs: { text: "a cat", clip: ["4", 1] } },
  "7": { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["4", 1] } },
  "8": { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
  "9": { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
});

let servers: ComfyStandin[] = [];
const sockets: InstanceType<typeof WebSocketClient>[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function standin(options: StandinOptions = {}): Promise<ComfyStandin> {
  const s = await startComfyStandin(options);
  servers.push(s);
  return s;
}

/** A `/ws` client that records every frame and, on chosen frames, what `/history/{id}` held at that moment. */
async function listen(base: string, clientId: string) {
  const messages: Msg[] = [];
  /** Binary frames: a sampler's previews. */
  const previews: Buffer[] = [];
  const historyAt: Promise<unknown>[] = [];
  const waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  const socket = new WebSocketClient(`${base.replace("http", "ws")}/ws?clientId=${clientId}`);
  sockets.push(socket);
  let closed = false;
  socket.on("close", () => { closed = true; });
  socket.on("message", (raw, isBinary) => {
    if (isBinary) return void previews.push(raw);
    const m = JSON.parse(raw.toString()) as Msg;
    messages.push(m);
    const pid = m.data.prompt_id as string | undefined;
    if (pid && (m.type === "execution_success" || (m.type === "executing" && m.data.node === null))) {
      // A server closed at the end of a test may drop a late read: recorded, not thrown.
      historyAt.push(fetch(`${base}/history/${pid}`).then((r) => r.json(), (e: unknown) => ({ readFailed: String(e) })));
    }
    for (const w of waiters.filter((x) => x.pred(m))) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  const until = (pred: (m: Msg) => boolean, ms = 5000) => {
    const seen = messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message in ${ms} ms; got ${messages.map((x) => x.type).join(",")}`)), ms);
      waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  };
  await until((m) => m.type === "status");
  return { messages, previews, historyAt, until, isClosed: () => closed, done: (pid: string) => until((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === pid) };
}

async function queue(base: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  const res = await fetch(`${base}/prompt`, { method: "POST", body: JSON.stringify(body), headers });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("ComfyUI stand-in: a prompt's run over /ws", () => {
  it("sends ComfyUI's events in order: execution_success before history exists, the final executing after", async () => {
    const s = await standin();
    const ws = await listen(s.url, "c1");
    const { status, body } = await queue(s.url, { prompt: txt2img(), client_id: "c1" });
    expect(status).toBe(200);
    expect(body).toMatchObject({ number: 0, node_errors: {} });
    expect(body.prompt_id).toMatch(/^[0-9a-f-]{36}$/);
    await ws.done(body.prompt_id);
    const order = ["4", "6", "7", "5", "3", "8", "9"];
    expect(ws.messages.map((m) => m.type === "executing" ? `executing:${m.data.node}` : m.type)).toEqual([
      "status", "status", "execution_start", "execution_cached",
      ...order.slice(0, 5).map((n) => `executing:${n}`), "progress", "progress", "progress", "progress",
      "executing:8", "executing:9", "executed", "execution_success", "status", "executing:null",
    ]);
    expect(ws.messages.filter((m) => m.type === "progress").map((m) => m.data)).toEqual(
      [5, 10, 15, 20].map((value) => ({ value, max: 20, prompt_id: body.prompt_id, node: "3" })));
    const executed = ws.messages.find((m) => m.type === "executed")!;
    expect(executed.data).toEqual({ node: "9", display_node: "9", prompt_id: body.prompt_id, output: { images: [{ filename: "ComfyUI_00001_.png", subfolder: "", type: "output" }] } });
    const [atSuccess, atEnd] = await Promise.all(ws.historyAt);
    expect(atSuccess).toEqual({});
    const entry = (atEnd as Record<string, any>)[body.prompt_id];
    expect(entry.status).toMatchObject({ status_str: "success", completed: true });
    expect(entry.status.messages.map((m: [string]) => m[0])).toEqual(["execution_start", "execution_cached", "execution_success"]);
    expect(entry.outputs).toEqual({ "9": executed.data.output });
    expect(entry.prompt.slice(0, 2)).toEqual([0, body.prompt_id]);
    expect(Object.keys((await (await fetch(`${s.url}/history`)).json()) as object)).toEqual([body.prompt_id]);
    const png = await fetch(`${s.url}/view?filename=ComfyUI_00001_.png&subfolder=&type=output`);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(pngInfo(Buffer.from(await png.arrayBuffer()))).toEqual({ width: 512, height: 384, text: "node=9;source=latent:5;size=512x384" });
    expect(s.prompts()).toEqual([body.prompt_id]);
  });

  it("reads the body as JSON whatever the Content-Type, and answers under /api too", async () => {
    const s = await standin();
    const r = await queue(s.url, { prompt: txt2img() }, { "content-type": "application/x-www-form-urlencoded" });
    expect(r.status).toBe(200);
    const q = await (await fetch(`${s.url}/api/prompt`)).json();
    expect(q).toHaveProperty("exec_info.queue_remaining");
    expect(await (await fetch(`${s.url}/api/models/checkpoints`)).json()).toEqual(["v1-5-pruned-emaonly.safetensors"]);
    expect((await fetch(`${s.url}/models/nope`)).status).toBe(404);
    const info = (await (await fetch(`${s.url}/object_info/SaveImage`)).json()) as Record<string, any>;
    expect(info.SaveImage).toMatchObject({ output_node: true, input_order: { required: ["images", "filename_prefix"] } });
    expect(await (await fetch(`${s.url}/object_info/Nope`)).json()).toEqual({});
    expect(((await (await fetch(`${s.url}/system_stats`)).json()) as any).devices[0]).toHaveProperty("vram_total");
  });
});

describe("ComfyUI stand-in: validation in ComfyUI's error shapes", () => {
  it("refuses a missing prompt, an unknown class, a prompt without outputs, a model not in the list and a bad prompt_id", async () => {
    const s = await standin();
    expect(await queue(s.url, {})).toEqual({ status: 400, body: { error: { type: "no_prompt", message: "No prompt provided", details: "No prompt provided", extra_info: {} }, node_errors: {} } });
    const unknown = await queue(s.url, { prompt: { ...txt2img(), "10": { class_type: "NoSuchNode", inputs: {} } } });
    expect(unknown).toEqual({ status: 400, body: { error: { type: "invalid_prompt", message: "Cannot execute because node NoSuchNode does not exist.", details: "Node ID '#10'", extra_info: {} }, node_errors: {} } });
    const { "9": _save, ...noOutputs } = txt2img();
    expect((await queue(s.url, { prompt: noOutputs })).body.error).toMatchObject({ type: "prompt_no_outputs", message: "Prompt has no outputs" });
    const missing = await queue(s.url, { prompt: txt2img("sdxl.safetensors") });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation" });
    expect(missing.body.error.details).toContain("Value not in list: ckpt_name: 'sdxl.safetensors' not in");
    expect(missing.body.node_errors).toEqual({
      "4": {
        class_type: "CheckpointLoaderSimple", dependent_outputs: ["9"],
        errors: [{ type: "value_not_in_list", message: "Value not in list", details: `ckpt_name: 'sdxl.safetensors' not in ["v1-5-pruned-emaonly.safetensors"]`,
          extra_info: { input_name: "ckpt_name", input_config: [["v1-5-pruned-emaonly.safetensors"]], received_value: "sdxl.safetensors" } }],
      },
    });
    const { ckpt_name: _c, ...noCkpt } = txt2img()["4"].inputs;
    const required = await queue(s.url, { prompt: { ...txt2img(), "4": { class_type: "CheckpointLoaderSimple", inputs: noCkpt } } });
    expect(required.body.node_errors["4"].errors[0]).toMatchObject({ type: "required_input_missing", details: "ckpt_name" });
    expect((await queue(s.url, { prompt: txt2img(), prompt_id: "not-a-uuid" })).body.error.type).toBe("invalid_prompt_id");
    expect(s.prompts()).toEqual([]);
  });

  it("accepts a prompt with one valid output and reports the other's node_errors (200)", async () => {
    const s = await standin();
    const prompt = { ...txt2img(), "11": { class_type: "LoadImage", inputs: {} }, "12": { class_type: "SaveImage", inputs: { images: ["11", 0], filename_prefix: "x" } } };
    const r = await queue(s.url, { prompt });
    expect(r.status).toBe(200);
    expect(r.body.node_errors["11"]).toMatchObject({ class_type: "LoadImage", dependent_outputs: ["12"] });
  });
});

describe("ComfyUI stand-in: files", () => {
  it("refuses traversal in /view: 400 for the filename, 403 for the subfolder", async () => {
    const s = await standin();
    const view = (q: string) => fetch(`${s.url}/view?${q}`).then((r) => r.status);
    expect(await view("filename=../secret.png&type=output")).toBe(400);
    expect(await view("filename=%2Fetc%2Fpasswd")).toBe(400);
    expect(await view("filename=a.png&subfolder=../../etc")).toBe(403);
    expect(await view("filename=a.png&type=models")).toBe(400);
    expect(await view("filename=absent.png")).toBe(404);
  });

  it("uploads an image that LoadImage reads, renames a different one of the same name, and a missing one fails at run time", async () => {
    const s = await standin();
    const upload = async (bytes: Buffer, name: string) => {
      const form = new FormData();
      form.append("image", new Blob([bytes], { type: "image/png" }), name);
      const res = await fetch(`${s.url}/upload/image`, { method: "POST", body: form });
      return { status: res.status, body: (await res.json()) as { name: string; subfolder: string; type: string } };
    };
    const src = makePng(10, 6, "upstream");
    expect(await upload(src, "handoff.png")).toEqual({ status: 200, body: { name: "handoff.png", subfolder: "", type: "input" } });
    expect((await upload(src, "handoff.png")).body.name).toBe("handoff.png"); // identical bytes: same file
    expect((await upload(makePng(2, 2, "other"), "handoff.png")).body.name).toBe("handoff (1).png");
    expect(s.uploads()).toEqual(["handoff.png", "handoff (1).png"]);
    const ws = await listen(s.url, "c2");
    const graph = (image: string) => ({
      "1": { class_type: "LoadImage", inputs: { image } },
      "2": { class_type: "ImageScaleBy", inputs: { image: ["1", 0], upscale_method: "nearest-exact", scale_by: 2 } },
      "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "down" } },
    });
    const ok = (await queue(s.url, { prompt: graph("handoff.png"), client_id: "c2" })).body.prompt_id as string;
    await ws.done(ok);
    const out = await fetch(`${s.url}/view?filename=down_00001_.png&type=output`);
    expect(pngInfo(Buffer.from(await out.arrayBuffer()))).toEqual({ width: 20, height: 12, text: "node=3;source=input:handoff.png;size=20x12" });
    const bad = (await queue(s.url, { prompt: graph("gone.png"), client_id: "c2" })).body.prompt_id as string;
    const e = await ws.until((m) => m.type === "execution_error" && m.data.prompt_id === bad);
    expect(e.data).toMatchObject({ node_id: "1", node_type: "LoadImage", exception_type: "FileNotFoundError", executed: [] });
  });
});

describe("ComfyUI stand-in: failures", () => {
  it("a failing node gives execution_error with ComfyUI's fields; history says error; the final executing still comes", async () => {
    const s = await standin({ failNode: { class_type: "KSampler", exception_type: "torch.OutOfMemoryError", message: "CUDA out of memory. Tried to allocate 2.00 GiB" } });
    const ws = await listen(s.url, "c3");
    const pid = (await queue(s.url, { prompt: txt2img(), client_id: "c3" })).body.prompt_id as string;
    await ws.done(pid);
    const e = ws.messages.find((m) => m.type === "execution_error")!;
    expect(e.data).toMatchObject({ prompt_id: pid, node_id: "3", node_type: "KSampler", executed: ["4", "6", "7", "5"], exception_type: "torch.OutOfMemoryError", current_inputs: {}, current_outputs: {} });
    expect(e.data.exception_message).toMatch(/^CUDA out of memory\. Tried to allocate 2\.00 GiB\nThis error means you ran out of memory/);
    expect(Array.isArray(e.data.traceback)).toBe(true);
    expect(typeof e.data.timestamp).toBe("number");
    expect(ws.messages.some((m) => m.type === "execution_success" || m.type === "executed")).toBe(false);
    const entry = ((await ws.historyAt[0]) as Record<string, any>)[pid];
    expect(entry.status).toMatchObject({ status_str: "error", completed: false });
    expect(entry.status.messages.at(-1)[0]).toBe("execution_error");
  });

  it("POST /interrupt ends the running prompt with execution_interrupted; another prompt's id leaves it running", async () => {
    const s = await standin({ nodeDelayMs: 80 });
    const ws = await listen(s.url, "c4");
    const pid = (await queue(s.url, { prompt: txt2img(), client_id: "c4" })).body.prompt_id as string;
    await ws.until((m) => m.type === "executing" && m.data.node === "6");
    await fetch(`${s.url}/interrupt`, { method: "POST", body: JSON.stringify({ prompt_id: "00000000-0000-4000-8000-000000000000" }) });
    await ws.until((m) => m.type === "executing" && m.data.node === "7");
    await fetch(`${s.url}/interrupt`, { method: "POST", body: JSON.stringify({ prompt_id: pid }) });
    await ws.done(pid);
    const i = ws.messages.find((m) => m.type === "execution_interrupted")!;
    expect(i.data).toMatchObject({ prompt_id: pid, node_id: "5", node_type: "EmptyLatentImage", executed: ["4", "6", "7"] });
    expect(s.interrupts()).toBe(2);
    expect(((await (await fetch(`${s.url}/history/${pid}`)).json()) as any)[pid].status.status_str).toBe("error");
  });

  it("refuses connections until a slow start is over", async () => {
    const s = await standin({ startDelayMs: 300 });
    await expect(fetch(`${s.url}/system_stats`)).rejects.toThrow();
    await s.ready;
    expect((await fetch(`${s.url}/system_stats`)).status).toBe(200);
  });

  it("a crash drops the sockets mid-prompt and nothing answers afterwards", async () => {
    const s = await standin({ nodeDelayMs: 100, crashAfterMs: 250 });
    const ws = await listen(s.url, "c5");
    const pid = (await queue(s.url, { prompt: txt2img(), client_id: "c5" })).body.prompt_id as string;
    await new Promise((r) => setTimeout(r, 400));
    expect(ws.isClosed()).toBe(true);
    expect(ws.messages.some((m) => m.type === "execution_success" || (m.type === "executing" && m.data.node === null))).toBe(false);
    await expect(fetch(`${s.url}/history/${pid}`)).rejects.toThrow();
  });
});

describe("ComfyUI stand-in: the shared prompts", () => {
  const dir = sharedDataDir("comfyui");
  it.skipIf(!dir)("runs every shared prompt to execution_success", async () => {
    const prompts = readdirSync(dir!).filter((f) => f.endsWith(".json")).sort()
      .map((f) => [f, JSON.parse(readFileSync(join(dir!, f), "utf8"))] as [string, Record<string, { class_type: string; inputs: Record<string, unknown> }>]);
    const classes = new Set(prompts.flatMap(([, p]) => Object.values(p).map((n) => n.class_type)));
    const checkpoints = [...new Set(prompts.flatMap(([, p]) => Object.values(p)
      .filter((n) => n.class_type === "CheckpointLoaderSimple").map((n) => String(n.inputs.ckpt_name))))];
    const upscalers = [...new Set(prompts.flatMap(([, p]) => Object.values(p)
      .filter((n) => n.class_type === "UpscaleModelLoader").map((n) => String(n.inputs.model_name))))];
    // Classes the stand-in does not know are declared accepting any inputs; Save*/Preview* are output nodes.
    const objectInfo = Object.fromEntries([...classes].map((c) => [c, { output_node: /^(Save|Preview)/.test(c) }]));
    const s = await standin({ objectInfo, models: { checkpoints, upscale_models: upscalers }, historyLagMs: 0 });
    const ws = await listen(s.url, "shared");
    for (const [file, prompt] of prompts) {
      const r = await queue(s.url, { prompt, client_id: "shared" });
      expect(r.status, `${file}: ${JSON.stringify(r.body)}`).toBe(200);
      await ws.done(r.body.prompt_id);
      expect(ws.messages.some((m) => m.type === "execution_success" && m.data.prompt_id === r.body.prompt_id), file).toBe(true);
    }
    expect(s.prompts()).toHaveLength(prompts.length);
  });
});
