/**
 * The local ComfyUI gateway behind `gpufabric comfyui proxy`: unmodified ComfyUI clients (the web
 * frontend, ComfyUI's example scripts, editor plug-ins) talk to it as to a ComfyUI server on loopback,
 * and it forwards every request to the agent's ComfyUI API (`<agent>/comfyui<path>`) with the tenant's
 * token added. Bodies stream both ways; WebSocket upgrades are piped through as raw bytes.
 *
 * It holds a credential, so it is stricter than a ComfyUI server: it listens on loopback only, refuses
 * requests whose Host is not a loopback name (a DNS-rebinding page would otherwise ride on the token),
 * keeps ComfyUI's own rule that a browser's Origin must match the Host, and drops whatever credentials
 * the local client sent.
 */
import { createServer as createHttpServer, request as httpRequest, Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { request as httpsRequest, Agent as HttpsAgent } from "node:https";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";

export interface ComfyGatewayOptions {
  /** The agent's base URL (`https://agent:8443`); `/comfyui` is added unless the URL already ends with it. */
  readonly agentUrl: string;
  /** The tenant's API token, sent as `Authorization: Bearer <token>`. */
  readonly token: string;
  /** A loopback address or `localhost`. @default "127.0.0.1" */
  readonly host?: string;
  /** 0 picks a free port. @default 8188 (ComfyUI's own) */
  readonly port?: number;
  /** CA certificates the agent's TLS certificate is checked against. @default the system's */
  readonly ca?: Buffer;
}

export interface ComfyGateway {
  /** Where clients point: `http://127.0.0.1:8188`. */
  readonly url: string;
  readonly port: number;
  /** The base every request is forwarded under: `https://agent:8443/comfyui`. */
  readonly upstream: string;
  close(): Promise<void>;
}

/** A mistake in the gateway's options, naming the flag to fix. */
export class GatewayOptionError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`${flag}: ${message}`);
    this.name = "GatewayOptionError";
  }
}

/** Headers that belong to one hop (RFC 9110 §7.6.1) and are never forwarded, plus the client's own credentials. */
const DROPPED_REQUEST_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  // Answered here already (Node's server sends 100 Continue itself); the agent's answer would be a second one.
  "expect",
  // The gateway's token is the only credential the agent sees: a local client's would be another identity.
  "authorization",
  "cookie",
  // Checked here against the local Host; the agent would compare it with its own host name and refuse
  // every browser request, although the caller it sees is this gateway, authenticated by its token.
  "origin",
]);
const DROPPED_RESPONSE_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === "localhost") return true;
  if (isIP(bare) === 4) return bare.startsWith("127.");
  if (isIP(bare) === 6) return bare === "::1" || bare === "0:0:0:0:0:0:0:1";
  return false;
}

/** The base URL requests are forwarded under, or a GatewayOptionError naming --agent. */
export function upstreamBase(agentUrl: string): URL {
  let url: URL;
  try {
    url = new URL(agentUrl);
  } catch {
    throw new GatewayOptionError("--agent", `'${agentUrl}' is not a URL: give the agent's address, e.g. https://gpufabric.example.internal:8443`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new GatewayOptionError("--agent", `'${agentUrl}' must be an https:// URL`);
  // The token would cross the network in clear text: plain http only to an agent on this machine (gpufabric dev).
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw new GatewayOptionError("--agent", `'${agentUrl}' is plain http to another machine, which would send the token in clear text: use https://`);
  }
  if (url.search !== "" || url.hash !== "") throw new GatewayOptionError("--agent", `'${agentUrl}' must not carry a query or fragment: give the agent's base URL`);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith("/comfyui") ? path : `${path}/comfyui`;
  return url;
}

/**
 * ComfyUI's origin rule (server.py, `create_origin_only_middleware`), applied to every request: a request
 * carrying an Origin whose host[:port] differs from its Host is refused, so a web page cannot queue
 * prompts through a server on loopback. Ports are compared only when both sides name one, as ComfyUI
 * does. Beyond ComfyUI: the Host itself must be a loopback name, since this gateway holds a token.
 */
export function refusalFor(headers: IncomingHttpHeaders): string | undefined {
  const host = headers.host;
  if (host === undefined || host === "") return "a Host header is required";
  let hostUrl: URL;
  try {
    hostUrl = new URL(`http://${host}`);
  } catch {
    return "the Host header is not a host name";
  }
  if (!isLoopbackHost(hostUrl.hostname)) return `Host '${host}' is not a loopback name: open the gateway as http://127.0.0.1:<port> or http://localhost:<port>`;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  let originUrl: URL;
  try {
    originUrl = new URL(origin);
  } catch {
    return "the Origin header is not a URL";
  }
  const hostPort = hostUrl.port !== "" ? `:${hostUrl.port}` : "";
  const originPort = originUrl.port !== "" ? `:${originUrl.port}` : "";
  const hostSide = originPort === "" ? hostUrl.hostname : `${hostUrl.hostname}${hostPort}`;
  const originSide = hostPort === "" ? originUrl.hostname : `${originUrl.hostname}${originPort}`;
  return hostSide.toLowerCase() === originSide.toLowerCase() ? undefined : `Origin '${origin}' does not match Host '${host}'`;
}

/**
 * Only paths under the agent's ComfyUI base: a `.` or `..` segment (also percent-encoded) could reach the
 * agent's other routes once some hop normalizes the path, so it is refused rather than forwarded.
 */
export function pathRefusal(url: string | undefined): string | undefined {
  const path = (url ?? "/").split("?")[0]!;
  if (!path.startsWith("/")) return "the request target must be a path starting with '/'";
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return "the path is not valid percent-encoding";
  }
  return decoded.split(/[/\\]/).some((s) => s === "." || s === "..") ? "the path must not contain '.' or '..' segments" : undefined;
}

/** The client's headers as sent upstream: hop-by-hop headers and local credentials dropped, the token added. */
function upstreamHeaders(headers: IncomingHttpHeaders, token: string, upgrade: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = new Set(
    (headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== ""),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_REQUEST_HEADERS.has(name) || (named.has(name) && name !== "upgrade")) continue;
    out[name] = value;
  }
  if (upgrade) {
    out.connection = "Upgrade";
    out.upgrade = headers.upgrade ?? "websocket";
  }
  out.authorization = `Bearer ${token}`;
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) out[name] = value;
  }
  return out;
}

/** Why a request is answered here instead of forwarded: 403 for the origin rule, 400 for a path outside the base. */
function refusalOf(req: IncomingMessage): { status: 403 | 400; message: string } | undefined {
  const forbidden = refusalFor(req.headers);
  if (forbidden !== undefined) return { status: 403, message: forbidden };
  const badPath = pathRefusal(req.url);
  return badPath === undefined ? undefined : { status: 400, message: badPath };
}

/** Writes a small HTTP response onto a raw socket (a refused or failed upgrade) and closes it. */
function endSocket(socket: Duplex, status: number, reason: string, body: string): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Starts the gateway; resolves once it listens. */
export async function startComfyGateway(options: ComfyGatewayOptions): Promise<ComfyGateway> {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopbackHost(host)) {
    throw new GatewayOptionError("--host", `'${host}' is not a loopback address: the gateway adds your token to every request, so only this machine may reach it; use 127.0.0.1, ::1 or localhost`);
  }
  const token = options.token.trim();
  if (token === "" || /[\r\n]/.test(token)) throw new GatewayOptionError("--token-file", "the file holds no token (or more than one line): put the tenant's API token alone in it");
  const base = upstreamBase(options.agentUrl);
  const secure = base.protocol === "https:";
  const basePath = base.pathname;
  // Keep-alive: the frontend and the scripts make many small requests (queue, history, view).
  const agent = secure ? new HttpsAgent({ keepAlive: true, ...(options.ca ? { ca: options.ca } : {}) }) : new HttpAgent({ keepAlive: true });
  const send = secure ? httpsRequest : httpRequest;
  const target = (path: string, headers: OutgoingHttpHeaders, method: string) =>
    send({ protocol: base.protocol, hostname: base.hostname, port: base.port || (secure ? 443 : 80), method, path: `${basePath}${path.startsWith("/") ? path : `/${path}`}`, headers, agent });

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const refusal = refusalOf(req);
    if (refusal !== undefined) {
      req.resume();
      res.writeHead(refusal.status, { "content-type": "text/plain; charset=utf-8" }).end(`${refusal.message}\n`);
      return;
    }
    const upstream = target(req.url ?? "/", upstreamHeaders(req.headers, token, false), req.method ?? "GET");
    upstream.on("response", (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders(answer.headers));
      answer.pipe(res);
      answer.on("error", () => res.destroy());
    });
    upstream.on("error", (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: `the agent at ${base.origin} cannot be reached: ${err.message}` }));
    });
    // A client that goes away mid-transfer (a cancelled upload) ends the upstream request too.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const server: Server = createHttpServer(forward);
  const sockets = new Set<Duplex>();
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const refusal = refusalOf(req);
    if (refusal !== undefined) {
      endSocket(socket, refusal.status, refusal.status === 403 ? "Forbidden" : "Bad Request", `${refusal.message}\n`);
      return;
    }
    const upstream = target(req.url ?? "/", upstreamHeaders(req.headers, token, true), req.method ?? "GET");
    let upgraded = false;
    // A client gone before the agent answered: nothing would ever close the agent's side.
    socket.once("close", () => {
      if (!upgraded) upstream.destroy();
    });
    upstream.on("upgrade", (answer, upstreamSocket, upstreamHead) => {
      upgraded = true;
      if (socket.destroyed) {
        upstreamSocket.destroy();
        return;
      }
      sockets.add(upstreamSocket);
      upstreamSocket.on("close", () => sockets.delete(upstreamSocket));
      // The agent's 101 goes back as it came (accept key, subprotocol, extensions); then bytes flow both ways untouched.
      const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? "Switching Protocols"}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
      upstreamSocket.on("error", () => socket.destroy());
      socket.on("close", () => upstreamSocket.destroy());
      upstreamSocket.on("close", () => socket.destroy());
    });
    // The agent refused the upgrade (no token, unknown path): pass its answer on.
    upstream.on("response", (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (c: Buffer) => chunks.push(c));
      answer.on("end", () => endSocket(socket, answer.statusCode ?? 502, answer.statusMessage ?? "", Buffer.concat(chunks).toString("utf8")));
    });
    upstream.on("error", (err) => endSocket(socket, 502, "Bad Gateway", `the agent at ${base.origin} cannot be reached: ${err.message}\n`));
    upstream.end();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 8188, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : (options.port ?? 8188);
  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    upstream: base.toString().replace(/\/$/, ""),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}
