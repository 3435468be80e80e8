import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { pathRefusal, refusalFor, startComfyGateway, upstreamBase, type ComfyGateway } from "../../cli/comfyui-gateway.ts";
import { REPO_ROOT, runCli } from "../support/cli.ts";

const TOKEN = "gf_test_token_0123456789";
const BIN = fileURLToPath(new URL("../../bin/gpufabric.mjs", import.meta.url));

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A stand-in for the agent's `/comfyui` base path: records what reaches it, echoes bodies, serves a binary image and a WebSocket. */
class StandInAgent {
  readonly seen: Seen[] = [];
  readonly upgrades: Seen[] = [];
  /** The agent-side sockets of upgrades it answers late (`/comfyui/slow/ws`). */
  readonly slowSockets: Duplex[] = [];
  readonly image = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(300_000)]);
  readonly server: Server;
  readonly wss = new WebSocketServer({ noServer: true });

  constructor(tls?: { key: Buffer; cert: Buffer }) {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    this.server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
    this.server.on("upgrade", (req: IncomingMessage, socket, head) => {
      this.upgrades.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.alloc(0) });
      if (req.url === "/comfyui/slow/ws") {
        this.slowSockets.push(socket);
        setTimeout(() => {
          if (!socket.destroyed) this.wss.handleUpgrade(req, socket, head, (ws) => ws.send("late"));
        }, 300);
        return;
      }
      if (!/^\/comfyui(\/api)?\/ws(\?|$)/.test(req.url ?? "")) {
        socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nno socket");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(JSON.stringify({ type: "status", data: { status: { exec_info: { queue_remaining: 0 } }, sid: "sid-1" } }));
        // Echoes every frame as it came: text as text, binary as binary.
        ws.on("message", (data: RawData, isBinary: boolean) => ws.send(isBinary ? (data as Buffer) : data.toString(), { binary: isBinary }));
      });
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      this.seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      if (req.url?.startsWith("/comfyui/view") || req.url?.startsWith("/comfyui/api/view")) {
        res.writeHead(200, { "content-type": "image/png", "content-length": String(this.image.length) }).end(this.image);
      } else if (req.url?.startsWith("/comfyui/upload/image")) {
        res.writeHead(200, { "content-type": "application/octet-stream", "x-body-sha256": sha(body) }).end(body);
      } else {
        res.writeHead(200, { "content-type": "application/json", "set-cookie": "upstream=1" }).end(JSON.stringify({ url: req.url }));
      }
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A raw HTTP request, so that Host, Origin, Cookie and Authorization are exactly what a test says. */
function call(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname: url.hostname, port: url.port, path, method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

function openSocket(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; first: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once("message", (data) => resolve({ ws, first: data.toString() }));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function nextFrame(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once("message", (data: RawData, isBinary: boolean) => resolve({ data: Buffer.from(data as Buffer), isBinary })));
}

describe("gpufabric comfyui proxy: the loopback gateway to the agent's ComfyUI API", () => {
  const agent = new StandInAgent();
  let gateway: ComfyGateway;

  beforeAll(async () => {
    await agent.start();
    gateway = await startComfyGateway({ agentUrl: `http://127.0.0.1:${agent.port}`, token: `${TOKEN}\n`, port: 0 });
  });
  afterAll(async () => {
    await gateway.close();
    await agent.stop();
  });

  it("forwards a path under /comfyui with the token added and the client's own credentials dropped", async () => {
    const answer = await call(gateway.url, "/prompt", { headers: { authorization: "Basic dXNlcjpwYXNz", cookie: "session=local", "x-client": "script" } });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body.toString())).toEqual({ url: "/comfyui/prompt" });
    const seen = agent.seen.at(-1)!;
    expect(seen.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers["x-client"]).toBe("script");
    // The agent's own headers come back untouched.
    expect(answer.headers["set-cookie"]).toEqual(["upstream=1"]);
  });

  it("keeps ComfyUI's /api prefix and query strings as they are", async () => {
    await call(gateway.url, "/api/history?max_items=2&offset=1");
    expect(agent.seen.at(-1)!.url).toBe("/comfyui/api/history?max_items=2&offset=1");
    await call(gateway.url, "/view?filename=a%20b.png&subfolder=&type=output");
    expect(agent.seen.at(-1)!.url).toBe("/comfyui/view?filename=a%20b.png&subfolder=&type=output");
  });

  it("streams request and response bodies byte for byte (uploads, /view images)", async () => {
    const upload = Buffer.concat([Buffer.from("--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\n"), randomBytes(1_048_576), Buffer.from("\r\n--b--\r\n")]);
    const answer = await call(gateway.url, "/upload/image", { method: "POST", headers: { "content-type": "multipart/form-data; boundary=b" }, body: upload });
    expect(answer.status).toBe(200);
    expect(sha(answer.body)).toBe(sha(upload));
    const seen = agent.seen.at(-1)!;
    expect(seen.method).toBe("POST");
    expect(seen.headers["content-type"]).toBe("multipart/form-data; boundary=b");
    expect(sha(seen.body)).toBe(sha(upload));

    // curl sends large uploads with Expect: 100-continue: answered here, the body still arrives whole.
    const expecting = await call(gateway.url, "/upload/image", { method: "POST", headers: { expect: "100-continue", "content-type": "multipart/form-data; boundary=b" }, body: upload });
    expect(sha(expecting.body)).toBe(sha(upload));
    expect(agent.seen.at(-1)!.headers.expect).toBeUndefined();

    const image = await call(gateway.url, "/api/view?filename=out.png&type=output");
    expect(image.headers["content-type"]).toBe("image/png");
    expect(image.body.equals(agent.image)).toBe(true);
  });

  it("forwards a form-encoded POST /prompt as it came (ComfyUI's example scripts send one)", async () => {
    const body = Buffer.from(JSON.stringify({ prompt: { "1": { class_type: "X", inputs: {} } }, client_id: "c1" }));
    await call(gateway.url, "/prompt", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    const seen = agent.seen.at(-1)!;
    expect(seen.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(seen.body.equals(body)).toBe(true);
  });

  it("forwards /ws and /api/ws to the agent with the token, and frames both ways, text and binary", async () => {
    const wsUrl = gateway.url.replace("http:", "ws:");
    const { ws, first } = await openSocket(`${wsUrl}/ws?clientId=abc`, { cookie: "session=local", authorization: "Basic eDp5" });
    expect(JSON.parse(first).type).toBe("status");
    const upgrade = agent.upgrades.at(-1)!;
    expect(upgrade.url).toBe("/comfyui/ws?clientId=abc");
    expect(upgrade.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(upgrade.headers.cookie).toBeUndefined();

    const text = nextFrame(ws);
    ws.send(JSON.stringify({ hello: "é" }));
    expect(await text).toEqual({ data: Buffer.from(JSON.stringify({ hello: "é" })), isBinary: false });
    const preview = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]), randomBytes(200_000)]);
    const binary = nextFrame(ws);
    ws.send(preview, { binary: true });
    const echoed = await binary;
    expect(echoed.isBinary).toBe(true);
    expect(echoed.data.equals(preview)).toBe(true);
    // A client that closes ends the agent's side too: no socket is left open behind it.
    const closed = new Promise<number>((resolve) => [...agent.wss.clients][0]!.once("close", (code) => resolve(code)));
    ws.close(1000);
    expect(await closed).toBe(1000);

    const api = await openSocket(`${wsUrl}/api/ws?clientId=def`);
    expect(agent.upgrades.at(-1)!.url).toBe("/comfyui/api/ws?clientId=def");
    api.ws.close();
  });

  it("closes the agent's side of an upgrade whose client left before the agent answered", async () => {
    const client = connect(gateway.port, "127.0.0.1");
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
    client.write(`GET /slow/ws HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await until(() => agent.slowSockets.length === 1);
    // A reset, not a FIN: nothing ends the gateway's side of the pipe by itself.
    client.resetAndDestroy();
    await until(() => agent.slowSockets[0]!.destroyed);
    expect(agent.slowSockets[0]!.destroyed).toBe(true);
  });

  it("passes on the agent's refusal of an upgrade", async () => {
    await expect(openSocket(`${gateway.url.replace("http:", "ws:")}/nows`)).rejects.toThrow("upgrade refused: 404");
  });

  it("refuses with 403, as ComfyUI does, a browser request whose Origin differs from Host; forwards a matching one", async () => {
    const before = agent.seen.length;
    const host = new URL(gateway.url).host;
    const foreign = await call(gateway.url, "/prompt", { method: "POST", headers: { host, origin: "http://evil.example:8188" }, body: Buffer.from("{}") });
    expect(foreign.status).toBe(403);
    const otherPort = await call(gateway.url, "/prompt", { headers: { host, origin: "http://127.0.0.1:1" } });
    expect(otherPort.status).toBe(403);
    expect(agent.seen.length).toBe(before);
    const same = await call(gateway.url, "/prompt", { headers: { host, origin: `http://${host}` } });
    expect(same.status).toBe(200);
    // The origin rule is checked here; the agent sees no browser Origin of ours.
    expect(agent.seen.at(-1)!.headers.origin).toBeUndefined();
    await expect(openSocket(`${gateway.url.replace("http:", "ws:")}/ws`, { origin: "http://evil.example" })).rejects.toThrow("upgrade refused: 403");
  });

  it("refuses a Host that is not a loopback name (a DNS-rebinding page would ride on the token)", async () => {
    const before = agent.seen.length;
    const rebinding = await call(gateway.url, "/prompt", { headers: { host: `evil.example:${gateway.port}`, origin: `http://evil.example:${gateway.port}` } });
    expect(rebinding.status).toBe(403);
    expect(rebinding.body.toString()).toContain("not a loopback name");
    expect(agent.seen.length).toBe(before);
  });

  it("refuses '..' segments rather than forwarding a path outside /comfyui", async () => {
    const before = agent.seen.length;
    expect((await call(gateway.url, "/../v1/runs")).status).toBe(400);
    expect((await call(gateway.url, "/%2e%2e/v1/runs")).status).toBe(400);
    expect(agent.seen.length).toBe(before);
  });

  it("answers 502 naming the agent when it cannot be reached", async () => {
    const lost = await startComfyGateway({ agentUrl: "http://127.0.0.1:1", token: TOKEN, port: 0 });
    try {
      const answer = await call(lost.url, "/prompt");
      expect(answer.status).toBe(502);
      expect(answer.body.toString()).toContain("http://127.0.0.1:1");
      expect(answer.body.toString()).not.toContain(TOKEN);
    } finally {
      await lost.close();
    }
  });
});

describe("the gateway's checks", () => {
  it("listens on loopback only, naming --host", async () => {
    await expect(startComfyGateway({ agentUrl: "https://agent:8443", token: TOKEN, host: "0.0.0.0", port: 0 })).rejects.toThrow(/--host: '0.0.0.0' is not a loopback address/);
  });

  it("sends the token over https only, unless the agent is on this machine", () => {
    expect(() => upstreamBase("http://agent.example:8443")).toThrow(/--agent: .*clear text: use https/);
    expect(upstreamBase("http://127.0.0.1:8443").toString()).toBe("http://127.0.0.1:8443/comfyui");
    expect(upstreamBase("https://agent:8443/").toString()).toBe("https://agent:8443/comfyui");
    expect(upstreamBase("https://agent:8443/comfyui/").toString()).toBe("https://agent:8443/comfyui");
    expect(upstreamBase("https://gw.example/fabric").toString()).toBe("https://gw.example/fabric/comfyui");
    expect(() => upstreamBase("agent:8443")).toThrow(/--agent/);
  });

  it("compares Origin and Host as ComfyUI does (ports only when both name one)", () => {
    expect(refusalFor({ host: "127.0.0.1:8188" })).toBeUndefined();
    expect(refusalFor({ host: "127.0.0.1:8188", origin: "http://127.0.0.1:8188" })).toBeUndefined();
    expect(refusalFor({ host: "localhost:8188", origin: "http://localhost" })).toBeUndefined();
    expect(refusalFor({ host: "localhost:8188", origin: "http://127.0.0.1:8188" })).toMatch(/does not match/);
    expect(refusalFor({ host: "[::1]:8188", origin: "http://[::1]:8188" })).toBeUndefined();
    expect(pathRefusal("/view?filename=../x")).toBeUndefined();
  });
});

describe("gpufabric comfyui proxy (the CLI)", () => {
  const dir = mkdtempSync(join(tmpdir(), "gf-comfyui-proxy-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a non-loopback --host", () => {
    const run = runCli("comfyui", "proxy", "--agent", "https://agent:8443", "--token-file", tokenFile, "--host", "0.0.0.0");
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--host: '0.0.0.0' is not a loopback address/);
  });

  it("names --agent for a plain-http remote agent, and --ca-file (or --ca) for an unreadable CA", () => {
    const plain = runCli("comfyui", "proxy", "--agent", "http://agent.example:8443", "--token-file", tokenFile, "--port", "0");
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/--agent: 'http:\/\/agent.example:8443' is plain http to another machine/);
    const ca = runCli("comfyui", "proxy", "--agent", "https://agent:8443", "--token-file", tokenFile, "--ca", join(dir, "no-ca.pem"));
    expect(ca.code).toBe(2);
    expect(ca.stderr).toMatch(/--ca-file: .*no-ca.pem cannot be read \(ENOENT\)/);
  });

  it("names --token-file when it is missing, empty or readable by others, and never prints the token", () => {
    const missing = runCli("comfyui", "proxy", "--agent", "https://agent:8443", "--token-file", join(dir, "nope"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--token-file: .*nope cannot be read \(ENOENT\)/);

    const open = join(dir, "open-token");
    writeFileSync(open, TOKEN);
    chmodSync(open, 0o644);
    const readable = runCli("comfyui", "proxy", "--agent", "https://agent:8443", "--token-file", open);
    expect(readable.code).toBe(2);
    expect(readable.stderr).toMatch(/--token-file: .* is readable by others .*chmod 600/);
    expect(readable.stderr).not.toContain(TOKEN);

    const empty = join(dir, "empty-token");
    writeFileSync(empty, "\n", { mode: 0o600 });
    expect(runCli("comfyui", "proxy", "--agent", "https://agent:8443", "--token-file", empty).stderr).toMatch(/--token-file: .* is empty/);
  });

  it("serves until SIGTERM and forwards with the token read from the file", async () => {
    const agent = new StandInAgent();
    await agent.start();
    const child = spawn(process.execPath, [BIN, "comfyui", "proxy", "--agent", `http://127.0.0.1:${agent.port}`, "--token-file", tokenFile, "--port", "0"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          const m = /served at (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once("exit", (code) => reject(new Error(`exited ${code}`)));
      });
      expect(out).not.toContain(TOKEN);
      expect((await call(url, "/object_info")).status).toBe(200);
      expect(agent.seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
      const exit = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await agent.stop();
    }
  });
});

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;
if (!hasOpenssl) console.warn("comfyui proxy TLS test skipped: openssl is not installed (apt-get install openssl) to make its certificate");

describe.runIf(hasOpenssl)("the gateway to an https agent with a private CA", () => {
  it("checks the agent's certificate against --ca-file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gf-comfyui-tls-"));
    try {
      const key = join(dir, "key.pem");
      const crt = join(dir, "crt.pem");
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=agent", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt], { stdio: "ignore" });
      const agent = new StandInAgent({ key: readFileSync(key), cert: readFileSync(crt) });
      await agent.start();
      const trusted = await startComfyGateway({ agentUrl: `https://127.0.0.1:${agent.port}`, token: TOKEN, port: 0, ca: readFileSync(crt) });
      const untrusted = await startComfyGateway({ agentUrl: `https://127.0.0.1:${agent.port}`, token: TOKEN, port: 0 });
      try {
        const ok = await call(trusted.url, "/system_stats");
        expect(ok.status).toBe(200);
        expect(agent.seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
        const { ws, first } = await openSocket(`${trusted.url.replace("http:", "ws:")}/ws?clientId=t`);
        expect(JSON.parse(first).type).toBe("status");
        ws.close();
        expect((await call(untrusted.url, "/system_stats")).status).toBe(502);
      } finally {
        await trusted.close();
        await untrusted.close();
        await agent.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
