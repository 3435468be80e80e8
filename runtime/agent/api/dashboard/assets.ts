/**
 * The dashboard's built files (`dist/ui` in the package), served under `/ui/`. The folder is enumerated
 * into a map together with index.html's bytes (one snapshot, re-taken when a rebuild replaced index.html),
 * and a request only ever looks its path up in that map: no path a client sends reaches
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

/** The build as one consistent whole: the index's bytes and the map of the files beside it, read together. */
interface Snapshot {
  readonly assets: Map<string, DashboardAsset>;
  /** index.html as read with this map (null: no build), so the page never names files the map lacks. */
  readonly index: Buffer | null;
  /** index.html's identity when read: a rebuild replaces it (new inode, time or size). */
  readonly stamp: string;
  /** Whether every `/ui/...` file the index names is in the map (false while a build is still being written). */
  readonly complete: boolean;
  readonly checkedAt: number;
}

function indexStamp(dir: string): string {
  try {
    const s = statSync(join(dir, "index.html"));
    return s.isFile() ? `${s.ino}:${s.mtimeMs}:${s.size}` : "";
  } catch {
    return "";
  }
}

/** The `/ui/...` paths an index names in src= and href= (the entry script, its preloads, the stylesheet). */
export function namedAssets(html: string): string[] {
  return [...html.matchAll(/(?:src|href)\s*=\s*["']?(\/ui\/[A-Za-z0-9._\/-]+)/g)].map((m) => m[1]!);
}

function takeSnapshot(dir: string, now: number): Snapshot {
  const stamp = indexStamp(dir);
  const assets = enumerateAssets(dir);
  let index: Buffer | null = null;
  try {
    index = assets.has("/ui/index.html") ? readFileSync(join(dir, "index.html")) : null;
  } catch {
    index = null;
  }
  const complete = index === null || namedAssets(index.toString("utf8")).every((path) => assets.has(path));
  // A stamp taken before the scan: if the index was replaced meanwhile the next look sees a new stamp.
  return { assets, index, stamp, complete, checkedAt: now };
}

export interface DashboardAssetOptions {
  /** How long a look at the build holds (ms): a rebuild is picked up within this. */
  readonly recheckMs?: number;
}

/** Registers the `/ui` routes; `dir` defaults to the package's `dist/ui`. */
export function registerDashboardAssets(app: FastifyInstance, dir = dashboardDir(), options: DashboardAssetOptions = {}): void {
  const recheckMs = options.recheckMs ?? 2000;
  let snapshot = takeSnapshot(dir, Date.now());
  // `npm run build:ui` under a running agent replaces index.html and the hashed files: at most one stat of
  // index.html per interval, and a new scan (index and map together) when it changed or the last scan caught
  // a build half written. Request paths are only ever looked up in the map.
  const current = (force = false): Snapshot => {
    const now = Date.now();
    if (!force && now - snapshot.checkedAt < recheckMs) return snapshot;
    const stamp = indexStamp(dir);
    snapshot = stamp !== snapshot.stamp || !snapshot.complete ? takeSnapshot(dir, now) : { ...snapshot, checkedAt: now };
    return snapshot;
  };
  app.addHook("onSend", async (request, reply, payload) => {
    const path = request.url.split("?")[0]!;
    if (path === "/ui" || path.startsWith("/ui/")) for (const [name, value] of Object.entries(DASHBOARD_HEADERS)) void reply.header(name, value);
    return payload;
  });
  const notFound = (key: string) => new ApiError(404, "not-found", `no dashboard file ${key.slice(0, 200)}`);
  const send = (reply: FastifyReply, key: string) => {
    const asset = current().assets.get(key);
    if (asset === undefined) throw notFound(key);
    let body: Buffer;
    try {
      body = readFileSync(asset.file);
    } catch {
      // Removed by a rebuild since the last look: gone for this client, and the next request sees the new build.
      current(true);
      throw notFound(key);
    }
    return reply.header("content-type", asset.contentType).header("cache-control", asset.cacheControl).send(body);
  };
  const index = async (_request: FastifyRequest, reply: FastifyReply) => {
    const { index: html, assets } = current();
    if (html === null) return reply.code(503).header("content-type", "text/html; charset=utf-8").header("cache-control", "no-store").send(MISSING_BUILD);
    const asset = assets.get("/ui/index.html")!;
    return reply.header("content-type", asset.contentType).header("cache-control", asset.cacheControl).send(html);
  };
  app.get("/ui", index);
  app.get("/ui/", index);
  app.get<{ Params: { file: string } }>("/ui/assets/:file", async (request, reply) => send(reply, `/ui/assets/${request.params.file}`));
  app.get<{ Params: { file: string } }>("/ui/:file", async (request, reply) => {
    // The index is served from the snapshot too, whichever path asks for it.
    if (request.params.file === "index.html") return index(request, reply);
    return send(reply, `/ui/${request.params.file}`);
  });
}

/** For tests and the bench: whether a built dashboard is there. */
export function dashboardBuilt(dir = dashboardDir()): boolean {
  try {
    return statSync(join(dir, "index.html")).isFile();
  } catch {
    return false;
  }
}
