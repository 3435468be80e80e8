/**
 * The Node versions the package declares are ones every installed dependency supports: `npm ci` then
 * installs without engine warnings on each of them, and the agent image runs one of them.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./agent/service/harness.ts";

// semver is npm's own range logic (installed with the toolchain); its types are not installed, hence the shape here.
const semver = createRequire(import.meta.url)("semver") as {
  subset(sub: string, dom: string): boolean;
  intersects(a: string, b: string): boolean;
  validRange(range: string): string | null;
  satisfies(version: string, range: string): boolean;
};

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version?: string; engines?: unknown; optional?: boolean }>;
};
const declared = pkg.engines.node;

describe("supported Node versions", () => {
  it("are a valid range that includes Node 20, which CI runs", () => {
    expect(semver.validRange(declared)).not.toBeNull();
    expect(semver.satisfies(process.version, declared), `the Node running the tests (${process.version}) is outside engines.node '${declared}'`).toBe(true);
  });

  it("are admitted by every package in package-lock.json", () => {
    const refusing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      // `engines` is an object in current lockfiles; very old packages wrote an array, which npm ignores.
      const range = entry.engines && typeof entry.engines === "object" && !Array.isArray(entry.engines) ? (entry.engines as { node?: unknown }).node : undefined;
      if (typeof range !== "string" || path === "") continue;
      if (!semver.subset(declared, range)) refusing.push(`${path.replace(/^.*node_modules\//, "")}@${entry.version} requires node '${range}'`);
    }
    expect(refusing, `engines.node '${declared}' admits versions these packages refuse`).toEqual([]);
  });

  it("include the agent image's Node", () => {
    const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
    const tags = [...dockerfile.matchAll(/^FROM node:(\d+)[^\s]*/gm)].map((m) => m[1]!);
    expect(tags.length).toBeGreaterThan(0);
    for (const major of tags) expect(semver.intersects(`${major}.x`, declared), `node:${major} in the Dockerfile is outside engines.node '${declared}'`).toBe(true);
  });

  it("keep fastify's inject working with the cookie version the override pins (light-my-request serializes cookies with it)", async () => {
    const app = Fastify();
    app.get("/", async (request) => ({ cookie: request.headers.cookie ?? null }));
    try {
      const response = await app.inject({ method: "GET", url: "/", cookies: { session: "a b", theme: "dark" } });
      expect(response.json()).toEqual({ cookie: "session=a%20b; theme=dark" });
    } finally {
      await app.close();
    }
  });
});
