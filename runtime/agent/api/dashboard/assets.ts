/**
 * The dashboard's built files (`dist/ui` in the package), served under `/ui/`. The folder is enumerated
 * into a map once, and a request only ever looks its path up in that map: no path a client sends reaches
 * the filesystem, so `..`, encoded slashes or links cannot lead anywhere else. Every `/ui` answer carries a
 * strict Content-Security-Policy (the built app needs no inline script or style) and the usual hardening
 * headers; the page itself holds no data, so these routes are public.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { packageRoot } from "../../../config/package.ts";
import { ApiError } from "../../service/api-error.ts";

export const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

export const DASHBOARD_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".txt": "text/plain; charset=utf-8",
};

export interface DashboardAsset {
  readonly file: string;
  readonly contentType: string;
  readonly cacheControl: string;
}

/** Files Vite names with a content hash (`index-3fA9b_x1.js`) never change: browsers may keep them a year. */
const HASHED = /[-.][A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const IMMUTABLE = "public, max-age=31536000, immutable";

/** `/ui/<path>` → file, for every regular file under `dir` (links and odd names are left out). */
export function enumerateAssets(dir: string): Map<string, DashboardAsset> {
  const assets = new Map<string, DashboardAsset>();
  const walk = (folder: string, depth: number) => {
    if (depth > 8) return;
    let entries;
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path, depth + 1);
      else if (entry.isFile() && /^[A-Za-z0-9._-]+$/.test(entry.name)) {
        const rel = relative(dir, path).split(sep).join("/");
        const type = CONTENT_TYPES[extname(entry.name).toLowerCase()] ?? "application/octet-stream";
        const cacheControl = rel === "index.html" ? "no-cache" : rel.startsWith("assets/") && HASHED.test(entry.name) ? IMMUTABLE : "no-cache";
        assets.set(`/ui/${rel}`, { file: path, contentType: type, cacheControl });
      }
    }
  };
  walk(dir, 0);
  return assets;
}

export function dashboardDir(): string {
  return join(packageRoot(), "dist", "ui");
}

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gpufabric dashboard not built</title></head>
<body><h1>The dashboard is not built</h1><p>This agent has no built dashboard (dist/ui/index.html is missing).
Run <code>npm run build</code> in the gpufabric package, then restart the agent.</p></body></html>
`;

export const DASHBOARD_ROUTES = ["/ui", "/ui/", "/ui/assets/:file", "/ui/:file"] as const;

/** Registers the `/ui` routes; `dir` defaults to the package's `dist/ui`. */
export function registerDashboardAssets(app: FastifyInstance, dir = dashboardDir()): void {
  let assets = enumerateAssets(dir);
  let checkedAt = Date.now();
  // A build made after the agent started is picked up (at most one look every 2 s while none is there).
  const current = () => {
    if (!assets.has("/ui/index.html") && Date.now() - checkedAt > 2000) {
      assets = enumerateAssets(dir);
      checkedAt = Date.now();
    }
    return assets;
  };
  app.addHook("onSend", async (request, reply, payload) => {
    const path = request.url.split("?")[0]!;
    if (path === "/ui" || path.startsWith("/ui/")) for (const [name, value] of Object.entries(DASHBOARD_HEADERS)) void reply.header(name, value);
    return payload;
  });
  const send = (reply: FastifyReply, key: string) => {
    const asset = current().get(key);
    if (asset === undefined) throw new ApiError(404, "not-found", `no dashboard file ${key.slice(0, 200)}`);
    return reply.header("content-type", asset.contentType).header("cache-control", asset.cacheControl).send(readFileSync(asset.file));
  };
  const index = async (_request: FastifyRequest, reply: FastifyReply) => {
    if (!current().has("/ui/index.html")) return reply.code(503).header("content-type", "text/html; charset=utf-8").header("cache-control", "no-store").send(MISSING_BUILD);
    return send(reply, "/ui/index.html");
  };
  app.get("/ui", index);
  app.get("/ui/", index);
  app.get<{ Params: { file: string } }>("/ui/assets/:file", async (request, reply) => send(reply, `/ui/assets/${request.params.file}`));
  app.get<{ Params: { file: string } }>("/ui/:file", async (request, reply) => send(reply, `/ui/${request.params.file}`));
}

/** For tests and the bench: whether a built dashboard is there. */
export function dashboardBuilt(dir = dashboardDir()): boolean {
  try {
    return statSync(join(dir, "index.html")).isFile();
  } catch {
    return false;
  }
}
