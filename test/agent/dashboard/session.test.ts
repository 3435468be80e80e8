/**
 * The dashboard's session against the real agent process: login, the cookie in place of a token on API
 * routes, CSRF, tampering, logout, and a second agent of the same deployment accepting the cookie.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_CSP } from "../../../runtime/agent/api/dashboard/assets.ts";
import { auditPaths, LOG_FILE } from "../../../runtime/security/audit/index.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "../service/harness.ts";

let platform: TestPlatform;
let agent: AgentProcess;
let second: AgentProcess | undefined;

beforeAll(async () => {
  platform = createPlatform({ devices: [{ id: "gpu-0", node: "n1", memoryMiB: 24_000 }] });
  agent = await startAgentProcess(platform);
}, 90_000);
afterAll(async () => {
  await second?.stop();
  await agent?.stop();
  if (platform) removePlatform(platform);
});

async function login(url: string, token: string) {
  const res = await fetch(`${url}/ui/session`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) });
  return { res, body: (await res.json()) as any, cookie: /^gf_session=([^;]+)/.exec(res.headers.get("set-cookie") ?? "")?.[1] };
}

function withCookie(url: string, cookie: string, csrf?: string) {
  const headers = { cookie: `gf_session=${cookie}`, ...(csrf && { "x-csrf-token": csrf }) };
  return {
    get: (path: string) => fetch(`${url}${path}`, { headers }),
    post: (path: string, body?: unknown) =>
      fetch(`${url}${path}`, { method: "POST", headers: { ...headers, ...(body !== undefined && { "content-type": "application/json" }) }, ...(body !== undefined && { body: JSON.stringify(body) }) }),
  };
}

describe("dashboard session", () => {
  it("turns a token into an HttpOnly SameSite=Strict cookie and refuses a bad token (401, audited)", async () => {
    const bad = await login(agent.url, "gf_" + "x".repeat(43));
    expect(bad.res.status).toBe(401);
    expect(bad.body.error.code).toMatch(/^unauthenticated/);
    expect(bad.cookie).toBeUndefined();
    const { res, body, cookie } = await login(agent.url, platform.tokens.studio!);
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ subject: "tester", tenant: "studio", role: "submitter" });
    expect(typeof body.csrfToken).toBe("string");
    const setCookie = res.headers.get("set-cookie")!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toMatch(/Secure/); // plain HTTP on loopback
    expect(cookie!.length).toBeGreaterThan(50);
    expect(cookie).not.toContain(platform.tokens.studio!.slice(3, 20)); // encrypted, not just encoded
    const log = readFileSync(join(auditPaths(platform.dataDir).logDir, LOG_FILE), "utf8");
    expect(log).toContain('"ui.login"');
    expect(log).toContain('"auth.failure"');
  });

  it("authenticates API routes by cookie with the token's roles, only the tenant's own runs, and CSRF on changes", async () => {
    const { body: session, cookie } = await login(agent.url, platform.tokens.studio!);
    const rivalRun = await client(agent.url, platform.tokens.rival).post("/v1/runs", { workflow: sleepyWorkflow("rival-wf", [{ id: "a", ms: 50 }]) });
    expect(rivalRun.status).toBe(202);

    const noCsrf = withCookie(agent.url, cookie!);
    expect((await noCsrf.get("/ui/session")).status).toBe(200);
    expect(((await (await noCsrf.get("/ui/session")).json()) as any).csrfToken).toBe(session.csrfToken);
    const list = await noCsrf.get("/v1/runs");
    expect(list.status).toBe(200);
    expect(((await list.json()) as any).runs.map((r: any) => r.id)).not.toContain(rivalRun.body.id);
    expect((await noCsrf.get(`/v1/runs/${rivalRun.body.id}`)).status).toBe(404);

    const workflow = sleepyWorkflow("cookie-wf", [{ id: "a", ms: 50 }]);
    const refused = await noCsrf.post("/v1/runs", { workflow });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as any).error.code).toBe("csrf");
    const wrong = await withCookie(agent.url, cookie!, "A".repeat(43)).post("/v1/runs", { workflow });
    expect(wrong.status).toBe(403);
    const accepted = await withCookie(agent.url, cookie!, session.csrfToken).post("/v1/runs", { workflow });
    expect(accepted.status).toBe(202);
    // An Authorization header takes precedence over the cookie (a script's token, no CSRF needed).
    const bearer = await client(agent.url, platform.tokens.studio).post("/v1/runs", { workflow }, { cookie: `gf_session=${cookie}` });
    expect(bearer.status).toBe(202);
  });

  it("refuses a tampered or foreign cookie, and answers 401 to GET /ui/session without one", async () => {
    const { cookie } = await login(agent.url, platform.tokens.studio!);
    const parts = cookie!.split(".");
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    for (const bad of [[parts[0], parts[1], parts[2], flip(parts[3]!), parts[4]].join("."), [parts[0], parts[1], parts[2], parts[3], flip(parts[4]!)].join("."), "garbage"]) {
      const res = await withCookie(agent.url, bad).get("/v1/runs");
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("unauthenticated:session");
      expect((await withCookie(agent.url, bad).get("/ui/session")).status).toBe(401);
    }
    expect((await fetch(`${agent.url}/ui/session`)).status).toBe(401);
  });

  it("logs out with the CSRF header only, clearing the cookie", async () => {
    const { body, cookie } = await login(agent.url, platform.tokens.studio!);
    expect((await withCookie(agent.url, cookie!).post("/ui/session/logout")).status).toBe(403);
    const out = await withCookie(agent.url, cookie!, body.csrfToken).post("/ui/session/logout");
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toMatch(/gf_session=;.*Expires=Thu, 01 Jan 1970/i);
  });

  it("serves /ui with the strict CSP (the built app, or the 503 page saying to build it)", async () => {
    const res = await fetch(`${agent.url}/ui/`);
    expect([200, 503]).toContain(res.status);
    expect(res.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    if (res.status === 503) expect(await res.text()).toContain("npm run build");
  });

  it("a cookie made by one agent is accepted by another agent of the same deployment (same Secrets)", async () => {
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    const sink = join(platform.dir, "audit-2");
    mkdirSync(sink);
    config.security.audit.sink.mountPath = sink;
    const configFile = join(platform.dir, "platform-2.json");
    writeFileSync(configFile, JSON.stringify(config));
    second = await startAgentProcess({ ...platform, configFile, dataDir: join(platform.dir, "data-2") });
    const { body, cookie } = await login(agent.url, platform.tokens.studio!);
    const there = await withCookie(second.url, cookie!).get("/ui/session");
    expect(there.status).toBe(200);
    expect(((await there.json()) as any).csrfToken).toBe(body.csrfToken);
    expect((await withCookie(second.url, cookie!).get("/v1/runs")).status).toBe(200);
  }, 90_000);
});
