/**
 * A client of one ComfyUI server, speaking its HTTP API and its `/ws` socket as `server.py` defines
 * them. Every call has a deadline: a server that stops answering must not hold an attempt for ever.
 */
import WebSocket from "ws";

/** A failed HTTP exchange: the server answered with a status other than 2xx, or did not answer. */
export class ComfyHttpError extends Error {
  constructor(
    message: string,
    /** The HTTP status, or null when the server could not be reached. */
    readonly status: number | null,
    /** The parsed JSON body of the answer, when it had one. */
    readonly body: unknown = undefined
  ) {
    super(message);
    this.name = "ComfyHttpError";
  }
}

/** What `POST /prompt` answered with 200. */
export interface QueuedPrompt {
  readonly prompt_id: string;
  readonly number: number;
  readonly node_errors: Readonly<Record<string, unknown>>;
}

/** One entry of `GET /history/{id}`. */
export interface HistoryEntry {
  readonly outputs?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly status?: { readonly status_str?: string; readonly completed?: boolean; readonly messages?: ReadonlyArray<[string, Record<string, unknown>]> };
}

/** A frame of the `/ws` socket: a JSON event, or a binary one (4-byte big-endian event type, then its payload). */
export type ComfyFrame =
  | { readonly kind: "json"; readonly type: string; readonly data: Readonly<Record<string, unknown>> }
  | { readonly kind: "binary"; readonly eventType: number; readonly payload: Buffer };

export interface ComfySocket {
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class ComfyClient {
  readonly url: string;

  constructor(
    url: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
    /** Sent with every request (a traced attempt's `traceparent`). */
    private readonly headers: Readonly<Record<string, string>> = {}
  ) {
    this.url = url.replace(/\/+$/, "");
  }

  /** A client of the same server whose requests carry an attempt's W3C trace context. */
  traced(trace: { readonly traceparent: string; readonly tracestate?: string }): ComfyClient {
    return new ComfyClient(this.url, this.timeoutMs, { ...this.headers, traceparent: trace.traceparent, ...(trace.tracestate !== undefined && { tracestate: trace.tracestate }) });
  }

  /** The server's `/system_stats`: answering it is what "ready" means. */
  systemStats(timeoutMs = 2_000): Promise<Record<string, unknown>> {
    return this.json("GET", "/system_stats", undefined, timeoutMs);
  }

  async queuePrompt(body: { prompt: unknown; prompt_id: string; client_id: string; extra_data?: unknown }): Promise<QueuedPrompt> {
    return this.json("POST", "/prompt", body);
  }

  /** The history entry of a prompt, or undefined while the server has none (`{}`). */
  async history(promptId: string): Promise<HistoryEntry | undefined> {
    const all = await this.json<Record<string, HistoryEntry>>("GET", `/history/${encodeURIComponent(promptId)}`);
    return all[promptId];
  }

  async view(file: { filename: string; subfolder: string; type: string }): Promise<Buffer> {
    const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
    const res = await this.fetch("GET", `/view?${query}`);
    return Buffer.from(await res.arrayBuffer());
  }

  /** Uploads an image to the server's `input` folder under `name`, replacing a file of that name. Returns the name it got. */
  async uploadImage(name: string, bytes: Uint8Array): Promise<string> {
    const form = new FormData();
    form.append("image", new Blob([bytes]), name);
    form.append("type", "input");
    form.append("overwrite", "true");
    const res = await this.fetch("POST", "/upload/image", form);
    const body = (await res.json()) as { name?: unknown };
    if (typeof body.name !== "string") throw new ComfyHttpError(`POST /upload/image answered without a name`, res.status, body);
    return body.name;
  }

  /** Interrupts the prompt if it is the one running (ComfyUI ignores other ids). */
  async interrupt(promptId: string): Promise<void> {
    await this.fetch("POST", "/interrupt", JSON.stringify({ prompt_id: promptId }));
  }

  /** Removes a prompt from the pending queue (a running one is untouched: interrupt it). */
  async deleteQueued(promptId: string): Promise<void> {
    await this.fetch("POST", "/queue", JSON.stringify({ delete: [promptId] }));
  }

  objectInfo(): Promise<Record<string, unknown>> {
    return this.json("GET", "/object_info");
  }

  modelFolders(): Promise<string[]> {
    return this.json("GET", "/models");
  }

  modelsIn(folder: string): Promise<string[]> {
    return this.json("GET", `/models/${encodeURIComponent(folder)}`);
  }

  /**
   * Opens `/ws?clientId=`; resolves once it is open. `onFrame` gets every frame, `onClose` once when
   * the socket ends for any reason other than close() (the server went away, the network dropped).
   */
  openSocket(clientId: string, onFrame: (frame: ComfyFrame) => void, onClose: (why: string) => void): Promise<ComfySocket> {
    const wsUrl = `${this.url.replace(/^http/, "ws")}/ws?clientId=${encodeURIComponent(clientId)}`;
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(wsUrl, { handshakeTimeout: this.timeoutMs, headers: { ...this.headers } });
      let opened = false;
      let closedByUs = false;
      socket.on("open", () => {
        opened = true;
        resolve({
          close: () => {
            closedByUs = true;
            socket.terminate();
          },
        });
      });
      socket.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
        if (isBinary) {
          if (buf.length >= 4) onFrame({ kind: "binary", eventType: buf.readUInt32BE(0), payload: buf.subarray(4) });
          return;
        }
        let parsed: { type?: unknown; data?: unknown };
        try {
          parsed = JSON.parse(buf.toString("utf8")) as { type?: unknown; data?: unknown };
        } catch {
          return; // ComfyUI sends only JSON text frames; anything else is not ours to act on
        }
        if (typeof parsed.type === "string") {
          const data = parsed.data !== null && typeof parsed.data === "object" ? (parsed.data as Record<string, unknown>) : {};
          onFrame({ kind: "json", type: parsed.type, data });
        }
      });
      socket.on("error", (err: Error) => {
        if (!opened) reject(new ComfyHttpError(`could not open ${wsUrl}: ${err.message}`, null));
      });
      socket.on("close", (code: number) => {
        if (!opened) reject(new ComfyHttpError(`could not open ${wsUrl}: closed with code ${code}`, null));
        else if (!closedByUs) onClose(`its WebSocket closed (code ${code})`);
      });
    });
  }

  private async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const res = await this.fetch(method, path, body === undefined ? undefined : JSON.stringify(body), timeoutMs);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ComfyHttpError(`${method} ${path} answered ${res.status} with a body that is not JSON`, res.status);
    }
  }

  private async fetch(method: string, path: string, body?: string | FormData, timeoutMs = this.timeoutMs): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        ...(body !== undefined && { body }),
        headers: { ...this.headers, ...(typeof body === "string" && { "content-type": "application/json" }) },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ComfyHttpError(`${method} ${path.split("?")[0]} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`, null);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const text = await res.text().catch(() => "");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    throw new ComfyHttpError(`${method} ${path.split("?")[0]} answered ${res.status}: ${text.slice(0, 500)}`, res.status, parsed);
  }
}
