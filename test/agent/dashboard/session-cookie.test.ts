import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { csrfMatches, csrfTokenOf, openSession, sealSession, SESSION_TTL_SECONDS, sessionCookieOf, sessionKeys } from "../../../runtime/agent/api/dashboard/session.ts";

const secret = randomBytes(64);
const keys = sessionKeys(secret);

describe("session cookie", () => {
  it("holds the token until it expires (8 h), and only for the deployment's key", async () => {
    const now = Date.UTC(2026, 0, 1);
    const cookie = await sealSession(keys, "gf_token", now);
    expect(cookie.expiresAt.getTime()).toBe(now + SESSION_TTL_SECONDS * 1000);
    expect(await openSession(keys, cookie.value, now + 1000)).toEqual({ ok: true, token: "gf_token" });
    expect(await openSession(sessionKeys(Buffer.from(secret)), cookie.value, now)).toEqual({ ok: true, token: "gf_token" });
    expect((await openSession(keys, cookie.value, now + SESSION_TTL_SECONDS * 1000)).ok).toBe(false);
    expect((await openSession(sessionKeys(randomBytes(64)), cookie.value, now)).ok).toBe(false);
    expect((await openSession(keys, "x".repeat(5000), now)).ok).toBe(false);
  });

  it("derives a CSRF token any replica can check, bound to the cookie", async () => {
    const a = await sealSession(keys, "gf_token");
    const b = await sealSession(keys, "gf_token");
    const token = csrfTokenOf(keys, a.value);
    expect(csrfMatches(sessionKeys(Buffer.from(secret)), a.value, token)).toBe(true);
    expect(csrfMatches(keys, b.value, token)).toBe(false);
    expect(csrfMatches(keys, a.value, undefined)).toBe(false);
    expect(csrfMatches(keys, a.value, [token, token])).toBe(false);
  });

  it("reads gf_session from a Cookie header among others", () => {
    expect(sessionCookieOf("a=1; gf_session=abc.def; b=2")).toBe("abc.def");
    expect(sessionCookieOf("a=1")).toBeUndefined();
    expect(sessionCookieOf(undefined)).toBeUndefined();
    expect(sessionCookieOf("gf_session=")).toBeUndefined();
  });
});
