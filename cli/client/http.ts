/**
 * The run client's HTTP transport: JSON requests and streamed bodies to one agent with one token, over
 * node:http(s) so that a private CA can be trusted (fetch cannot take one). Every failure becomes a
 * CliError that says what went wrong and what to change: the agent unreachable (its URL and how to set
 * it), its certificate untrusted (--ca-file), the token refused (where it came from), or the agent's own
 * `{ error: { code, message, field } }`.
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { CliError, EXIT } from "../errors.ts";
import type { Connection } from "./connection.ts";

/** Long enough for a large ComfyUI prompt to be validated; the event stream and downloads have none. */
const REQUEST_TIMEOUT_MS = 60_000;

/** Socket errors that mean "nothing answers at this address". */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "ECONNRESET", "EPIPE"]);
/** TLS errors that a private CA (--ca-file) fixes, or that say the certificate names another host. */
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

export interface JsonResponse<T> {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: T;
}

/** The agent's error body, as the HTTP API documents it. */
interface ApiErrorBody {
  readonly error?: { readonly code?: string; readonly message?: string; readonly field?: string };
}

/** An answer of 400 or more, with the agent's code and field kept for callers that tell cases apart. */
export class AgentResponseError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
    readonly field: string | undefined,
  ) {
    super(message, EXIT.failure);
    this.name = "AgentResponseError";
  }
}

/** Nothing answered at the agent's address (or the connection dropped): a watch retries these. */
export class AgentUnreachableError extends CliError {
  override name = "AgentUnreachableError";
}

export class AgentClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly secure: boolean;

  constructor(readonly connection: Connection) {
    this.secure = connection.url.protocol === "https:";
    this.agent = this.secure ? new HttpsAgent({ keepAlive: true, ...(connection.ca ? { ca: connection.ca } : {}) }) : new HttpAgent({ keepAlive: true });
  }

  /** Sends a request and parses the JSON answer; an answer of 400 or more throws its agent message. */
  async json<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const response = await this.send(method, path, { ...(payload && { "content-type": "application/json" }), ...headers }, payload, REQUEST_TIMEOUT_MS);
    const text = (await readAll(response)).toString("utf8");
    if ((response.statusCode ?? 0) >= 400) throw this.failure(method, path, response.statusCode ?? 0, text);
    let parsed: T;
    try {
      parsed = JSON.parse(text) as T;
    } catch {
      throw new CliError(`${method} ${path}: the agent at ${this.origin()} answered ${response.statusCode} with a body that is not JSON: is ${this.origin()} a gpufabric agent?`);
    }
    return { status: response.statusCode ?? 0, headers: response.headers, body: parsed };
  }

  /** Opens a GET whose body the caller reads as it arrives (events, artifacts); 400 and more throw. */
  async stream(path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    const response = await this.send("GET", path, headers, undefined, 0);
    if ((response.statusCode ?? 0) >= 400) throw this.failure("GET", path, response.statusCode ?? 0, (await readAll(response)).toString("utf8"));
    return response;
  }

  /** Lets the process exit once the last request is done (keep-alive sockets would hold it). */
  close(): void {
    this.agent.destroy();
  }

  origin(): string {
    return this.connection.url.origin;
  }

  private send(method: string, path: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<IncomingMessage> {
    const url = new URL(this.connection.url.pathname.replace(/\/+$/, "") + path, this.connection.url);
    return new Promise((resolve, reject) => {
      const request = (this.secure ? httpsRequest : httpRequest)(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            accept: "application/json",
            authorization: `Bearer ${this.connection.token}`,
            ...(body && { "content-length": String(body.length) }),
            ...headers,
          },
        },
        resolve
      );
      if (timeoutMs > 0) {
        request.setTimeout(timeoutMs, () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000} s`), { code: "ETIMEDOUT" })));
      }
      request.on("error", (err) => reject(this.transportError(err as NodeJS.ErrnoException)));
      request.end(body);
    });
  }

  private transportError(err: NodeJS.ErrnoException): Error {
    const code = err.code ?? "";
    const where = `the agent at ${this.origin()} (${this.connection.source.url})`;
    if (UNREACHABLE.has(code)) {
      return new AgentUnreachableError(
        `cannot reach ${where}: ${code}. Is the agent running there? Set its address with --url, GPUFABRIC_URL or a profile ('gpufabric profile add NAME --url URL --token-stdin')`
      );
    }
    if (UNTRUSTED.has(code)) {
      return new CliError(
        `the TLS certificate of ${where} is not trusted (${code}: ${err.message}): pass --ca-file with the CA certificate (PEM) that signed it, set GPUFABRIC_CA_FILE, or set caFile in the profile`
      );
    }
    if (code === "EPROTO" || /wrong version number|packet length too long/i.test(err.message)) {
      return new CliError(`${where} does not speak ${this.secure ? "https" : "http"} (${err.message}): check the URL's scheme`);
    }
    return new CliError(`request to ${where} failed: ${code ? `${code}: ` : ""}${err.message}`);
  }

  private failure(method: string, path: string, status: number, text: string): AgentResponseError {
    let error: ApiErrorBody["error"];
    try {
      error = (JSON.parse(text) as ApiErrorBody).error;
    } catch {
      error = undefined;
    }
    const message = error?.message ?? (text.trim().slice(0, 200) || `HTTP ${status}`);
    const field = error?.field;
    const detail = `${message}${field !== undefined && !message.startsWith(`${field}:`) ? ` (field '${field}')` : ""}`;
    let summary: string;
    if (status === 401) {
      summary = `the agent at ${this.origin()} refused the token (401: ${message}): check the token from ${this.connection.source.token}, or pick another with --profile, --token-file or GPUFABRIC_TOKEN`;
    } else if (status === 403) {
      summary = `not allowed (403): ${detail}`;
    } else if (status === 404) {
      summary = `not found (404): ${detail}`;
    } else if (status >= 500) {
      summary = `the agent at ${this.origin()} failed on ${method} ${path} (${status}): ${detail}`;
    } else {
      summary = `refused (${status}${error?.code ? ` ${error.code}` : ""}): ${detail}`;
    }
    return new AgentResponseError(summary, status, error?.code, field);
  }
}

export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}
