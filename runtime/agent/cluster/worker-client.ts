/**
 * A worker's HTTP client of the control plane: JSON over keep-alive connections, HTTPS with the cluster's
 * CA where the URL says https, the worker's bearer token on every call. It follows a follower's 421 to the
 * leader it names, and moves on to the next control-plane URL when one cannot be reached.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { NotLeader } from "./protocol.ts";

export interface ClientResponse<T> {
  readonly status: number;
  readonly body: T;
}

/** The control plane could not be reached at any URL (refused, reset, timed out). */
export class ControlPlaneUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ControlPlaneUnreachableError";
  }
}

export class ControlPlaneClient {
  private readonly urls: string[];
  private current = 0;
  private leader: string | undefined;
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  private readonly httpsAgent: HttpsAgent;

  constructor(
    urls: readonly string[],
    private readonly token: string,
    options: { readonly ca?: Buffer } = {}
  ) {
    if (urls.length === 0) throw new RangeError("at least one control-plane URL is needed");
    this.urls = urls.map((u) => u.replace(/\/+$/, ""));
    this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(options.ca && { ca: options.ca }) });
  }

  /** Where calls go now: the leader when one was named, else the current configured URL. */
  get target(): string {
    return this.leader ?? this.urls[this.current]!;
  }

  /**
   * POSTs `body` as JSON; follows one 421 to the leader it names. Throws ControlPlaneUnreachableError when
   * the target cannot be reached (the next call tries the next URL).
   */
  async post<T>(path: string, body: unknown, timeoutMs: number): Promise<ClientResponse<T>> {
    for (let hop = 0; ; hop++) {
      let res: ClientResponse<unknown>;
      try {
        res = await this.send(this.target, path, body, timeoutMs);
      } catch (err) {
        this.moveOn();
        throw new ControlPlaneUnreachableError(`the control plane cannot be reached: ${(err as Error).message}`, { cause: err });
      }
      if (res.status === 421) {
        const leader = (res.body as Partial<NotLeader>).leader;
        if (typeof leader === "string" && leader !== this.target && hop < 2) {
          this.leader = leader.replace(/\/+$/, "");
          continue;
        }
        this.moveOn();
      }
      return res as ClientResponse<T>;
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Forgets the leader it was sent to and tries the next configured URL next time. */
  private moveOn(): void {
    if (this.leader !== undefined) this.leader = undefined;
    else this.current = (this.current + 1) % this.urls.length;
  }

  private send(base: string, path: string, body: unknown, timeoutMs: number): Promise<ClientResponse<unknown>> {
    const url = new URL(path, `${base}/`);
    const payload = Buffer.from(JSON.stringify(body));
    const https = url.protocol === "https:";
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        url,
        {
          method: "POST",
          agent: https ? this.httpsAgent : this.httpAgent,
          headers: { "content-type": "application/json", "content-length": payload.length, authorization: `Bearer ${this.token}` },
          timeout: timeoutMs,
        },
        (res: IncomingMessage) => {
          const parts: Buffer[] = [];
          res.on("data", (c: Buffer) => parts.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(parts).toString("utf8");
            let parsed: unknown = null;
            try {
              parsed = text === "" ? null : JSON.parse(text);
            } catch {
              parsed = { message: text.slice(0, 500) };
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        }
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    });
  }
}
