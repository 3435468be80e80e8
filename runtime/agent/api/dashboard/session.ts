/**
 * The dashboard's browser session: a pasted API token becomes the `gf_session` cookie (HttpOnly,
 * SameSite=Strict), which every API route then accepts in place of an Authorization header.
 *
 * The cookie is self-contained: an encrypted JWE (dir, A256GCM) holding the token and an expiry, so that
 * every control-plane replica of a deployment can read it without shared session state, and any change to
 * it fails authentication. The token inside is authenticated again on every request, so revoking the token
 * or changing its role takes effect at once. The CSRF token is an HMAC of the cookie, so any replica can
 * check it as well.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import { compactDecrypt, CompactEncrypt } from "jose";
import type { PlatformConfig } from "../../../config/schema.ts";
import { SIGNING_KEY_FILES } from "../../service/security.ts";

export const SESSION_COOKIE = "gf_session";
export const CSRF_HEADER = "x-csrf-token";
/** A session lasts a working day; the browser then asks for the token again. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;

export interface SessionKeys {
  /** Encrypts and authenticates the cookie (AES-256-GCM). */
  readonly cookieKey: Uint8Array;
  /** Derives the CSRF token of a cookie (HMAC-SHA256). */
  readonly csrfKey: Buffer;
}

/**
 * Why the audit checkpoint signing key: the session keys must be the same on every control-plane replica
 * of a deployment and secret to it. Of what the agent loads, the token files hold only token hashes (not
 * secret, and they change whenever a token is added), and the keyring rotates (old cookies would need the
 * old version's key, and a provider behind a KMS never hands its key material out). The signing key is a
 * Secret every replica mounts at the same path, the agent refuses to start without it, and it does not
 * rotate under a running agent. HKDF with a purpose of its own keeps the derived keys independent of the
 * signatures it makes.
 */
export function sessionKeysFromConfig(config: Pick<PlatformConfig, "security">): SessionKeys {
  const dir = config.security.audit.signingKey.mountPath;
  const path = SIGNING_KEY_FILES.map((name) => join(dir, name)).find((p) => existsSync(p));
  if (path === undefined) throw new Error(`no checkpoint signing key in ${dir}: the dashboard's sessions are keyed from it`);
  return sessionKeys(readFileSync(path));
}

export function sessionKeys(secret: Uint8Array): SessionKeys {
  const derive = (purpose: string) => Buffer.from(hkdfSync("sha256", secret, "gpufabric", purpose, 32));
  return { cookieKey: derive("dashboard-session-cookie/v1"), csrfKey: derive("dashboard-session-csrf/v1") };
}

export interface SessionCookie {
  readonly value: string;
  readonly expiresAt: Date;
}

export async function sealSession(keys: SessionKeys, token: string, now = Date.now()): Promise<SessionCookie> {
  const exp = Math.floor(now / 1000) + SESSION_TTL_SECONDS;
  const payload = new TextEncoder().encode(JSON.stringify({ tok: token, exp }));
  const value = await new CompactEncrypt(payload).setProtectedHeader({ alg: "dir", enc: "A256GCM", typ: "gf-session" }).encrypt(keys.cookieKey);
  return { value, expiresAt: new Date(exp * 1000) };
}

/** The token a cookie holds, or why it is refused (tampered, made with another key, expired). */
export async function openSession(keys: SessionKeys, value: string, now = Date.now()): Promise<{ ok: true; token: string } | { ok: false; reason: string }> {
  // A JWE of a session is a few hundred bytes; a huge value is not ours and is not parsed.
  if (value.length > 4096) return { ok: false, reason: "session cookie too long" };
  let claims: { tok?: unknown; exp?: unknown };
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(value, keys.cookieKey, { keyManagementAlgorithms: ["dir"], contentEncryptionAlgorithms: ["A256GCM"] });
    if (protectedHeader.typ !== "gf-session") return { ok: false, reason: "not a session cookie" };
    claims = JSON.parse(new TextDecoder().decode(plaintext)) as typeof claims;
  } catch {
    return { ok: false, reason: "session cookie does not decrypt (altered, or made by another deployment)" };
  }
  if (typeof claims.tok !== "string" || typeof claims.exp !== "number") return { ok: false, reason: "session cookie holds no token" };
  if (claims.exp * 1000 <= now) return { ok: false, reason: "session expired: log in again" };
  return { ok: true, token: claims.tok };
}

export function csrfTokenOf(keys: SessionKeys, cookieValue: string): string {
  return createHmac("sha256", keys.csrfKey).update(cookieValue).digest("base64url");
}

export function csrfMatches(keys: SessionKeys, cookieValue: string, sent: string | string[] | undefined): boolean {
  if (typeof sent !== "string") return false;
  const expected = Buffer.from(csrfTokenOf(keys, cookieValue));
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The session cookie of a request's Cookie header, if it sends one. */
export function sessionCookieOf(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined || cookieHeader.length > 16_384) return undefined;
  const value = parseCookies(cookieHeader)[SESSION_COOKIE];
  return value === undefined || value === "" ? undefined : value;
}

export function setCookieHeader(cookie: SessionCookie, secure: boolean): string {
  return serializeCookie(SESSION_COOKIE, cookie.value, { httpOnly: true, sameSite: "strict", path: "/", secure, expires: cookie.expiresAt });
}

export function clearCookieHeader(secure: boolean): string {
  return serializeCookie(SESSION_COOKIE, "", { httpOnly: true, sameSite: "strict", path: "/", secure, expires: new Date(0), maxAge: 0 });
}
