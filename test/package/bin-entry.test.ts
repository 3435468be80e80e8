/**
 * bin/gpufabric.mjs runs the build in dist/ only when it is current: never a build older than the sources
 * beside it, never when GPUFABRIC_FROM_SOURCE=1 (the test suite's setting), always in an installed package
 * (which ships no sources). Checked on a copy of bin/ whose "build" and "sources" say which one ran.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../agent/service/harness.ts";

let root: string;

function ran(env: Record<string, string> = {}): string {
  const { GPUFABRIC_FROM_SOURCE: _inherited, ...rest } = process.env;
  const result = spawnSync(process.execPath, [join(root, "bin", "gpufabric.mjs")], { env: { ...rest, ...env }, encoding: "utf8", timeout: 60_000 });
  expect(result.stderr).toBe("");
  return result.stdout.trim();
}

const HOUR_AGO = new Date(Date.now() - 3_600_000);

describe("bin/gpufabric.mjs", () => {
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "gpufabric-bin-"));
    mkdirSync(join(root, "bin"));
    copyFileSync(join(REPO_ROOT, "bin", "gpufabric.mjs"), join(root, "bin", "gpufabric.mjs"));
    symlinkSync(join(REPO_ROOT, "node_modules"), join(root, "node_modules"));
    writeFileSync(join(root, "package.json"), JSON.stringify({ name: "gpufabric", type: "module" }));
    for (const dir of ["constructs", "runtime", "policies", "cli"]) mkdirSync(join(root, dir));
    writeFileSync(join(root, "cli", "index.ts"), 'export function main(): void { console.log("sources"); }\n');
    mkdirSync(join(root, "dist", "cli"), { recursive: true });
    writeFileSync(join(root, "dist", "cli", "index.js"), 'export function main() { console.log("build"); }\n');
    for (const path of ["cli/index.ts", "cli", "constructs", "runtime", "policies"]) utimesSync(join(root, path), HOUR_AGO, HOUR_AGO);
    writeFileSync(join(root, "dist", ".build-stamp"), "");
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("runs the build when it is newer than every source", () => {
    expect(ran()).toBe("build");
  });

  it("runs the sources when GPUFABRIC_FROM_SOURCE=1", () => {
    expect(ran({ GPUFABRIC_FROM_SOURCE: "1" })).toBe("sources");
  });

  it("runs the sources when one of them changed after the build, unless told GPUFABRIC_FROM_SOURCE=0", () => {
    writeFileSync(join(root, "runtime", "edited.ts"), "export {};\n");
    try {
      expect(ran()).toBe("sources");
      expect(ran({ GPUFABRIC_FROM_SOURCE: "0" })).toBe("build");
    } finally {
      rmSync(join(root, "runtime", "edited.ts"));
      utimesSync(join(root, "runtime"), HOUR_AGO, HOUR_AGO);
    }
  });

  it("runs the sources when there is no build, and the build when there are no sources (an installed package)", () => {
    rmSync(join(root, "dist", ".build-stamp"));
    expect(ran()).toBe("sources");
    writeFileSync(join(root, "dist", ".build-stamp"), "");
    rmSync(join(root, "cli", "index.ts"));
    expect(ran()).toBe("build");
  });
});
