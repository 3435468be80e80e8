import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DASHBOARD_CSP, enumerateAssets, registerDashboardAssets } from "../../../runtime/agent/api/dashboard/assets.ts";
import { ApiError } from "../../../runtime/agent/service/api-error.ts";

let dir: string;
let app: FastifyInstance;

async function serve(root: string): Promise<FastifyInstance> {
  const server = Fastify();
  server.setErrorHandler((err, _request, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send(err.body());
    return reply.code(500).send({ error: String(err) });
  });
  registerDashboardAssets(server, root);
  await server.ready();
  return server;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gf-ui-"));
  mkdirSync(join(dir, "ui", "assets"), { recursive: true });
  writeFileSync(join(dir, "ui", "index.html"), "<!doctype html><script type=module src=/ui/assets/index-AbCdEf12.js></script>");
  writeFileSync(join(dir, "ui", "assets", "index-AbCdEf12.js"), "console.log(1)");
  writeFileSync(join(dir, "ui", "assets", "index-Zz9_xY-1.css"), "body{}");
  writeFileSync(join(dir, "ui", "favicon.svg"), "<svg/>");
  writeFileSync(join(dir, "secret.txt"), "not for clients");
  symlinkSync(join(dir, "secret.txt"), join(dir, "ui", "assets", "link.js"));
});
afterEach(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("dashboard assets", () => {
  it("maps the built files once, with their types and caching, and leaves links out", () => {
    const assets = enumerateAssets(join(dir, "ui"));
    expect([...assets.keys()].sort()).toEqual(["/ui/assets/index-AbCdEf12.js", "/ui/assets/index-Zz9_xY-1.css", "/ui/favicon.svg", "/ui/index.html"]);
    expect(assets.get("/ui/index.html")).toMatchObject({ contentType: "text/html; charset=utf-8", cacheControl: "no-cache" });
    expect(assets.get("/ui/assets/index-AbCdEf12.js")).toMatchObject({ contentType: "text/javascript; charset=utf-8", cacheControl: "public, max-age=31536000, immutable" });
    expect(assets.get("/ui/assets/index-Zz9_xY-1.css")!.contentType).toBe("text/css; charset=utf-8");
  });

  it("serves the app with the strict CSP and hardening headers on every /ui answer, errors included", async () => {
    app = await serve(join(dir, "ui"));
    for (const url of ["/ui", "/ui/", "/ui/assets/index-AbCdEf12.js", "/ui/assets/nope.js"]) {
      const res = await app.inject({ url });
      expect(res.headers["content-security-policy"], url).toBe(DASHBOARD_CSP);
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["referrer-policy"]).toBe("no-referrer");
      expect(res.headers["x-frame-options"]).toBe("DENY");
    }
    expect(DASHBOARD_CSP).toContain("script-src 'self';");
    expect(DASHBOARD_CSP).not.toContain("unsafe-inline");
    const index = await app.inject({ url: "/ui/" });
    expect(index.statusCode).toBe(200);
    expect(index.headers["cache-control"]).toBe("no-cache");
    expect(index.body).toContain("index-AbCdEf12.js");
    const js = await app.inject({ url: "/ui/assets/index-AbCdEf12.js" });
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toContain("immutable");
  });

  it("refuses every path outside the map: traversal, encoded slashes, links", async () => {
    app = await serve(join(dir, "ui"));
    for (const url of ["/ui/assets/..%2F..%2Fsecret.txt", "/ui/assets/%2e%2e%2fsecret.txt", "/ui/..%2Fsecret.txt", "/ui/assets/link.js", "/ui/assets/../../secret.txt", "/ui/assets/..%5c..%5csecret.txt"]) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain("not for clients");
    }
  });

  it("answers 503 with a page saying how to build when the build is missing", async () => {
    app = await serve(join(dir, "nothing-here"));
    const res = await app.inject({ url: "/ui/" });
    expect(res.statusCode).toBe(503);
    expect(res.headers["content-type"]).toContain("text/html");
    expect(res.body).toContain("npm run build");
    expect(res.headers["content-security-policy"]).toBe(DASHBOARD_CSP);
  });
});
