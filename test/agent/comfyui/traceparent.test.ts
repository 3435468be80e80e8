/**
 * A traced ComfyUI attempt sends its W3C trace context (`traceparent`) on each of its requests to the
 * server, HTTP and the /ws upgrade alike; an attempt without one sends none. A recording proxy in front
 * of the stand-in server sees the headers as they go over the wire.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ComfyUiSchema } from "../../../runtime/config/schema.ts";
import { parseWorkflow } from "../../../runtime/graph/index.ts";
import { ComfyRelay, ComfyServerPool, ComfyUiExecutor } from "../../../runtime/agent/executors/comfyui/index.ts";
import { startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { segmented, twoSegmentPrompt } from "./fixtures.ts";

const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/** Forwards HTTP and WebSocket upgrades to `target`, recording each request's path and headers. */
async function recordingProxy(target: string): Promise<{ url: string; server: Server; seen: Array<{ path: string; headers: IncomingHttpHeaders }> }> {
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers });
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket: Socket, head: Buffer) => {
    seen.push({ path: req.url ?? "", headers: req.headers });
    const upstream = connect(Number(to.port), to.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`)];
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket).pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}

describe("comfyui executor: the attempt's trace context on its requests", () => {
  let dir: string;
  let standin: ComfyStandin;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let pool: ComfyServerPool;
  let executor: ComfyUiExecutor;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gpufabric-comfy-trace-"));
    standin = await startComfyStandin({ nodeDelayMs: 2 });
    proxy = await recordingProxy(standin.url);
    pool = new ComfyServerPool({ config: ComfyUiSchema.parse({ servers: [{ gpu: "g0", url: proxy.url }], startTimeoutMs: 5_000 }), gpus: [{ id: "g0", index: 0, memoryMiB: 24_576 }] });
    pool.start();
    executor = new ComfyUiExecutor({ dataDir: dir, pool, relay: new ComfyRelay() });
  });
  afterAll(async () => {
    await pool?.stop();
    proxy?.server.close();
    await standin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = async (n: number, trace?: { traceparent: string }) => {
    const prompt = twoSegmentPrompt();
    const { sample } = segmented(prompt);
    const handle = await executor.start({
      attemptId: `attempt-${n}`,
      runId: "run-1",
      stageId: sample.id,
      number: n,
      stage: sample,
      gpus: [{ id: "g0", uuid: null, simulated: true }],
      inputs: [],
      comfy: { nodes: parseWorkflow(prompt).comfyNodes! },
      ...(trace && { trace }),
    });
    const outcome = await handle.done;
    expect(outcome.reason, outcome.message).toBe("completed");
  };
  const attemptRequests = (from: number) => proxy.seen.slice(from).filter((r) => /^\/(prompt|history|ws|view|upload)/.test(r.path));

  it("sends traceparent on the prompt, the history reads and the /ws upgrade of a traced attempt, and nothing for an untraced one", async () => {
    const before = proxy.seen.length;
    await run(1, { traceparent: TRACEPARENT });
    const traced = attemptRequests(before);
    expect(traced.map((r) => r.path.split("?")[0])).toEqual(expect.arrayContaining(["/ws", "/prompt"]));
    expect(traced.some((r) => r.path.startsWith("/history"))).toBe(true);
    for (const r of traced) expect(r.headers.traceparent, r.path).toBe(TRACEPARENT);

    const middle = proxy.seen.length;
    await run(2);
    const untraced = attemptRequests(middle);
    expect(untraced.length).toBeGreaterThan(0);
    for (const r of untraced) expect(r.headers.traceparent, r.path).toBeUndefined();
  });
});
