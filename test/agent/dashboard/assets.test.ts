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

describe("dashboard assets after a rebuild while the agent runs", () => {
  /** What `npm run build:ui` does: the output folder emptied, new hashed names, a new index naming them. */
  function rebuild(root: string, hash: string) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, "assets"), { recursive: true });
    writeFileSync(join(root, "assets", `index-${hash}.js`), `console.log(${JSON.stringify(hash)})`);
    writeFileSync(join(root, "assets", `index-${hash}.css`), "body{margin:0}");
    writeFileSync(join(root, "index.html"), `<!doctype html><script type=module src=/ui/assets/index-${hash}.js></script><link rel=stylesheet href=/ui/assets/index-${hash}.css>`);
  }
  const assetsOf = (html: string) => [...html.matchAll(/(?:src|href)=(\/ui\/assets\/[A-Za-z0-9._-]+)/g)].map((m) => m[1]!);

  it("serves the new index and every asset it names once the build changed", async () => {
    const root = join(dir, "ui");
    app = Fastify();
    app.setErrorHandler((err, _request, reply) => reply.code(err instanceof ApiError ? err.status : 500).send({ error: String(err) }));
    registerDashboardAssets(app, root, { recheckMs: 0 });
    await app.ready();
    expect((await app.inject({ url: "/ui/assets/index-AbCdEf12.js" })).statusCode).toBe(200);

    rebuild(root, "NeWhAsH9");
    const index = await app.inject({ url: "/ui/" });
    expect(index.statusCode).toBe(200);
    const named = assetsOf(index.body);
    expect(named).toEqual(["/ui/assets/index-NeWhAsH9.js", "/ui/assets/index-NeWhAsH9.css"]);
    for (const url of named) expect((await app.inject({ url })).statusCode, url).toBe(200);
    expect((await app.inject({ url: "/ui/assets/index-NeWhAsH9.js" })).body).toContain("NeWhAsH9");
    // The old build's files are gone from the map with it; paths outside the map still never reach the disk.
    expect((await app.inject({ url: "/ui/assets/index-AbCdEf12.js" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/ui/assets/..%2F..%2Fsecret.txt" })).statusCode).toBe(404);
  });

  it("keeps the index and the map one snapshot between looks at the build (at most one look per interval)", async () => {
    const root = join(dir, "ui");
    app = Fastify();
    app.setErrorHandler((err, _request, reply) => reply.code(err instanceof ApiError ? err.status : 500).send({ error: String(err) }));
    registerDashboardAssets(app, root, { recheckMs: 60_000 });
    await app.ready();
    expect((await app.inject({ url: "/ui/" })).body).toContain("index-AbCdEf12.js");
    // A build written under a running agent: until the next look the page still names the files the map holds.
    writeFileSync(join(root, "index.html"), "<!doctype html><script type=module src=/ui/assets/index-Half0000.js></script>");
    const index = await app.inject({ url: "/ui/" });
    expect(index.body).toContain("index-AbCdEf12.js");
    for (const url of assetsOf(index.body)) expect((await app.inject({ url })).statusCode, url).toBe(200);
  });

  it("looks again while the new index names files the build has not written yet", async () => {
    const root = join(dir, "ui");
    app = Fastify();
    app.setErrorHandler((err, _request, reply) => reply.code(err instanceof ApiError ? err.status : 500).send({ error: String(err) }));
    registerDashboardAssets(app, root, { recheckMs: 0 });
    await app.ready();
    // The index lands before its stylesheet: the map is incomplete, so the next request looks again.
    writeFileSync(join(root, "assets", "index-LaTe0001.js"), "1");
    writeFileSync(join(root, "index.html"), "<!doctype html><script type=module src=/ui/assets/index-LaTe0001.js></script><link rel=stylesheet href=/ui/assets/index-LaTe0001.css>");
    await app.inject({ url: "/ui/" });
    writeFileSync(join(root, "assets", "index-LaTe0001.css"), "body{}");
    expect((await app.inject({ url: "/ui/assets/index-LaTe0001.css" })).statusCode).toBe(200);
  });
});
