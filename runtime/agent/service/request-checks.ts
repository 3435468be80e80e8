/**
 * Checks of a request before any route sees it: the JSON body parser with its depth cap, browser
 * headers (cross-site Origin, DNS rebinding), and one credential per request.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { formatJsonPath, scanJsonTextDepth, tooDeepMessage } from "../../graph/json-depth.ts";
import { ApiError } from "./api-error.ts";
import { THREADED_SUBMISSION_BYTES } from "./submission-thread.ts";

/**
 * JSON bodies are checked for depth on their raw text, without recursion, before JSON.parse: the parser,
 * the schema checks and every later walk (canonical JSON, sealing, the ComfyUI importer) recurse, and a
 * body nested 200,000 levels deep would overflow their stacks (a 500, or worse, a stalled agent).
 */
export function installJsonParser(app: FastifyInstance, maxDepth: number): void {
  // Fastify's own parser after the scan: it keeps refusing '__proto__' keys (prototype poisoning).
  const parse = app.getDefaultJsonParser("error", "ignore");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body as string;
    const tooDeep = scanJsonTextDepth(text, maxDepth);
    if (tooDeep !== undefined) {
      const field = formatJsonPath(tooDeep.path);
      done(new ApiError(400, "too-deep", `${field}: ${tooDeepMessage(tooDeep)}`, field), undefined);
      return;
    }
    // Large bodies are validated again from their text on the submission thread (see SubmissionThread).
    if (text.length >= THREADED_SUBMISSION_BYTES) request.largeJsonText = text;
    parse(request, text, done);
  });
}

const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;

/**
 * A page on another site must not drive the API from a browser: a cross-site Origin is refused, and an
 * agent on loopback answers only to loopback host names, so a rebound DNS name cannot reach it.
 */
export function checkBrowserHeaders(request: FastifyRequest, loopbackOnly: boolean): void {
  const host = request.headers.host ?? "";
  if (loopbackOnly && !LOOPBACK_HOST.test(host)) {
    throw new ApiError(421, "unexpected-host", `Host '${host.slice(0, 100)}' is not this agent's: address it as 127.0.0.1 or localhost`, "host");
  }
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = "";
  }
  if (originHost.toLowerCase() !== host.toLowerCase()) {
    throw new ApiError(403, "cross-origin", `Origin '${origin.slice(0, 100)}' is another site: the API answers only same-origin browser requests`, "origin");
  }
}

/**
 * One credential per request. Node keeps only the first of two Authorization headers, and a proxy may
 * join them with a comma: either way the agent would authenticate one credential while a proxy or log
 * in front of it saw another, so both forms are refused.
 */
export function checkSingleCredential(request: FastifyRequest): void {
  const raw = request.raw.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== "authorization") continue;
    seen++;
    if (seen > 1 || raw[i + 1]!.includes(",")) {
      throw new ApiError(400, "duplicate-credential", "authorization: send exactly one 'Authorization: Bearer <token>' header holding one credential", "authorization");
    }
  }
}
