/** What the agent refuses at start, and how `gpufabric dev` adapts a synthesized config for a laptop. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localPlatform, DEV_SUBJECT } from "../../../runtime/agent/service/local-platform.ts";
import { parsePlatformConfig, type PlatformConfig } from "../../../runtime/config/index.ts";
import { sha256 } from "../../../runtime/security/identity/index.ts";
import { REPO_ROOT, createPlatform, tenant } from "./harness.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function agent(args: string[]) {
  return spawnSync(process.execPath, ["bin/gpufabric.mjs", "agent", ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
}

describe("gpufabric agent refuses to start", () => {
  it("without TLS on a non-loopback address, naming the fix", () => {
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    dirs.push(platform.dir);
    const result = agent(["--config", platform.configFile, "--data-dir", platform.dataDir, "--host", "0.0.0.0", "--port", "0", "--inventory", "simulated"]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/host: '0\.0\.0\.0' is not a loopback address and security\.tls\.enabled is false/);
  });

  it("with a config that does not validate, naming the field", () => {
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    dirs.push(platform.dir);
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.scheduler.headroomMiB = -1;
    writeFileSync(platform.configFile, JSON.stringify(config));
    const result = agent(["--config", platform.configFile, "--port", "0"]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("scheduler.headroomMiB");
  });

  it("with a missing config file or a bad option", () => {
    expect(agent(["--config", join(tmpdir(), "no-such-platform.json")]).status).toBe(2);
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    dirs.push(platform.dir);
    const bad = agent(["--config", platform.configFile, "--durability", "sometimes", "--port", "0"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("durability");
  });
});

describe("localPlatform", () => {
  const base = (name: string, tenants: string[], workflows: PlatformConfig["workflows"]): PlatformConfig => {
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }], tenants: tenants.map((t) => tenant(t)) });
    dirs.push(platform.dir);
    const config = parsePlatformConfig(JSON.parse(readFileSync(platform.configFile, "utf8")));
    return {
      ...config,
      deployment: { ...config.deployment, name, listen: { host: "0.0.0.0", port: 8443 } },
      security: { ...config.security, tls: { enabled: true } },
      workflows,
    };
  };
  const workflow = (name: string, tenants: string[]): PlatformConfig["workflows"][number] => ({
    name,
    format: "native",
    priority: "batch",
    tenants,
    document: {},
  });

  it("serves the first deployment on loopback without TLS, merges the others' workflows for its tenants, and stores only token hashes", () => {
    const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-local-"));
    dirs.push(dataDir);
    const first = base("batch", ["studio", "lab"], [workflow("sheet", ["studio"])]);
    const second = base(
      "interactive",
      ["studio", "outsider"],
      [workflow("sheet", ["studio"]), workflow("comfy", ["studio", "outsider"]), workflow("private", ["outsider"])]
    );
    const local = localPlatform([first, second], dataDir, 0);
    expect(local.config.deployment).toMatchObject({ name: "batch", listen: { host: "127.0.0.1", port: 0 }, dataDir });
    expect(local.config.security.tls.enabled).toBe(false);
    expect(local.config.workflows.map((w) => [w.name, w.tenants])).toEqual([
      ["sheet", ["studio"]],
      ["comfy", ["studio"]],
    ]);
    expect(local.mergedFrom).toEqual(["interactive"]);
    for (const t of local.config.tenants) expect(t.roles).toContainEqual({ subject: DEV_SUBJECT, role: "submitter" });
    expect(Object.keys(local.tokens).sort()).toEqual(["lab", "studio"]);
    const file = readFileSync(join(dataDir, "tokens", "studio"), "utf8");
    expect(file).not.toContain(local.tokens.studio);
    expect(file).toContain(`sha256:${sha256(local.tokens.studio!).toString("hex")} ${DEV_SUBJECT}`);
    expect(parsePlatformConfig(JSON.parse(readFileSync(local.configFile, "utf8")))).toEqual(local.config);
  });
});
