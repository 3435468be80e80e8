/** The /ws side of the ComfyUI client: JSON events and binary frames (4-byte big-endian type, then payload). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { ComfyClient, ComfyHttpError, type ComfyFrame } from "../../../runtime/agent/executors/comfyui/client.ts";

describe("ComfyClient.openSocket", () => {
  let wss: WebSocketServer;
  let url: string;
  const connected: Array<{ socket: WebSocket; path: string }> = [];

  beforeAll(async () => {
    wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    url = `http://127.0.0.1:${(wss.address() as { port: number }).port}`;
    wss.on("connection", (socket, req) => connected.push({ socket, path: req.url ?? "" }));
  });
  afterAll(() => new Promise<void>((resolve) => wss.close(() => resolve())));

  it("delivers JSON events and binary previews, and reports a socket the server closed", async () => {
    const frames: ComfyFrame[] = [];
    let lost = "";
    const socket = await new ComfyClient(url).openSocket("abc123", (f) => frames.push(f), (why) => (lost = why));
    await waitUntil(() => connected.length === 1);
    expect(connected[0]!.path).toBe("/ws?clientId=abc123");
    const server = connected[0]!.socket;
    server.send(JSON.stringify({ type: "executing", data: { node: "3", prompt_id: "p" } }));
    const preview = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), Buffer.from("PNGBYTES")]);
    server.send(preview, { binary: true });
    server.send("not json");
    await waitUntil(() => frames.length === 2);
    expect(frames[0]).toEqual({ kind: "json", type: "executing", data: { node: "3", prompt_id: "p" } });
    expect(frames[1]).toMatchObject({ kind: "binary", eventType: 1 });
    expect((frames[1] as { payload: Buffer }).payload.equals(preview.subarray(4))).toBe(true);
    server.close();
    await waitUntil(() => lost !== "");
    expect(lost).toMatch(/its WebSocket closed/);
    socket.close();
  });

  it("does not report a socket it closed itself, and refuses to open on a server that is not there", async () => {
    let lost = false;
    const socket = await new ComfyClient(url).openSocket("mine", () => undefined, () => (lost = true));
    socket.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(lost).toBe(false);
    await expect(new ComfyClient("http://127.0.0.1:1").openSocket("x", () => undefined, () => undefined)).rejects.toBeInstanceOf(ComfyHttpError);
  });
});

async function waitUntil(probe: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
