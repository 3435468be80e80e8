/**
 * `/ui/session`: log in with a pasted token (POST), read who is logged in (GET), log out (POST .../logout);
 * and the cookie's authentication for every other route (cookieCredential, checkCsrf). The session routes
 * are public in ROUTES because they authenticate what they are sent themselves; their outcomes are audited
 * here (`ui.login`, `auth.failure`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Identity } from "../../../security/identity/index.ts";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";
import {
  clearCookieHeader,
  CSRF_HEADER,
  csrfMatches,
  csrfTokenOf,
  openSession,
  sealSession,
  sessionCookieOf,
  sessionKeysFromConfig,
  setCookieHeader,
  type SessionKeys,
} from "./session.ts";

export const LoginBody = z.object({ token: z.string().min(1).max(16_384) }).strict();
export const SessionAnswer = z.object({ subject: z.string(), tenant: z.string(), role: z.string().nullable(), csrfToken: z.string() });

/** The session keys of a deployment, derived on first use (a server without a signing key still starts; only cookies fail). */
export function lazySessionKeys(parts: Pick<HttpParts, "config">): () => SessionKeys {
  let keys: SessionKeys | undefined;
  return () => (keys ??= sessionKeysFromConfig(parts.config));
}

function secureCookies(parts: HttpParts): boolean {
  return parts.config.security.tls.enabled;
}

/**
 * The credential a request's session cookie holds, when it sends no Authorization header; undefined when
 * it sends none. A cookie that does not open is refused (401), not ignored: the browser must log in again.
 */
export async function cookieCredential(request: FastifyRequest, keys: () => SessionKeys): Promise<{ credential: string; cookie: string } | { refused: string } | undefined> {
  if (request.headers.authorization !== undefined) return undefined;
  const cookie = sessionCookieOf(request.headers.cookie);
  if (cookie === undefined) return undefined;
  const opened = await openSession(keys(), cookie);
  return opened.ok ? { credential: `Bearer ${opened.token}`, cookie } : { refused: opened.reason };
}

/** A request authenticated by its cookie that changes something must prove it comes from the dashboard's own page. */
export function checkCsrf(request: FastifyRequest, cookie: string, keys: () => SessionKeys): void {
  if (request.method === "GET" || request.method === "HEAD") return;
  if (!csrfMatches(keys(), cookie, request.headers[CSRF_HEADER])) {
    throw new ApiError(403, "csrf", `a request authenticated by the session cookie must send header '${CSRF_HEADER}' with the csrfToken of GET /ui/session`, CSRF_HEADER);
  }
}

export function registerSessionRoutes(app: FastifyInstance, parts: HttpParts, keys: () => SessionKeys): void {
  const answer = (identity: Identity, cookie: string) => ({
    subject: identity.subject,
    tenant: identity.tenant,
    role: parts.authorizer.bindings.roleOf(identity) ?? null,
    csrfToken: csrfTokenOf(keys(), cookie),
  });
  const refuse = async (request: FastifyRequest, reason: string, detail: string): Promise<never> => {
    await parts.audit.note({
      actor: "anonymous",
      action: "auth.failure",
      outcome: "denied",
      source: request.ip,
      object: null,
      data: { reason, detail: detail.slice(0, 500), method: request.method, route: request.routeOptions.url ?? null },
    });
    throw new ApiError(401, `unauthenticated:${reason}`, reason === "missing" ? "not logged in: POST /ui/session with { token }" : `the credential was refused (${reason})`);
  };

  app.post("/ui/session", async (request, reply) => {
    const parsed = LoginBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new ApiError(400, "invalid-request", "token: send { \"token\": \"<api token>\" } (a non-empty string)", "token");
    const auth = await parts.authenticator.authenticate(`Bearer ${parsed.data.token.trim()}`);
    if (!auth.ok) return refuse(request, auth.reason, auth.detail);
    const cookie = await sealSession(keys(), parsed.data.token.trim());
    await parts.audit.note({
      actor: auth.identity.subject,
      tenant: auth.identity.tenant,
      action: "ui.login",
      outcome: "success",
      source: request.ip,
      object: null,
      data: { method: "POST", route: "/ui/session", expiresAt: cookie.expiresAt.toISOString() },
    });
    return reply.header("set-cookie", setCookieHeader(cookie, secureCookies(parts))).header("cache-control", "no-store").send(answer(auth.identity, cookie.value));
  });

  app.get("/ui/session", async (request, reply) => {
    const found = await cookieCredential(request, keys);
    if (found === undefined) return refuse(request, "missing", "no session cookie");
    if ("refused" in found) return refuse(request, "session", found.refused);
    const auth = await parts.authenticator.authenticate(found.credential);
    if (!auth.ok) return refuse(request, auth.reason, auth.detail);
    return reply.header("cache-control", "no-store").send(answer(auth.identity, found.cookie));
  });

  app.post("/ui/session/logout", async (request, reply: FastifyReply) => {
    const cookie = sessionCookieOf(request.headers.cookie);
    // The cookie holds no server state: logging out is forgetting it, guarded so another site cannot log the user out.
    if (cookie !== undefined) checkCsrf(request, cookie, keys);
    return reply.code(204).header("set-cookie", clearCookieHeader(secureCookies(parts))).send();
  });
}
