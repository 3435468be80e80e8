/**
 * `gpufabric keys retire` while objects still use the version: it says who rewraps them and how to follow it,
 * and the agent does rewrap them, also after a rotation made while it was stopped.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, createPlatform, removePlatform, startAgentProcess, waitFor, type AgentProcess, type TestPlatform } from "../agent/service/harness.ts";

const platforms: TestPlatform[] = [];
afterAll(() => platforms.forEach(removePlatform));

describe("gpufabric keys retire of a version still in use", () => {
  it("names the running agent that rewraps, or says none runs; a stopped agent rewraps when it starts", async () => {
    const p = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    platforms.push(p);
    const keys = (...args: string[]) =>
      spawnSync(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "keys", ...args, "--keyring", p.keyringDir, "--data-dir", p.dataDir], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });
    // A long key check: the rewrap cannot have happened when retire is tried.
    let agent: AgentProcess | undefined = await startAgentProcess(p, ["--key-check-interval", "600"]);
    try {
      expect(keys("rotate").status).toBe(0);
      const whileRunning = keys("retire", "v1");
      expect(whileRunning.status).toBe(1);
      expect(whileRunning.stderr).toMatch(new RegExp(`v1 still protects \\d+ objects?: the agent running on ${p.dataDir} \\(pid ${agent.child.pid} on [^)]+\\) rewraps them to v2 in the background`));
      expect(whileRunning.stderr).toContain("gpufabric keys list");
      await agent.stop();
      agent = undefined;

      const whileStopped = keys("retire", "v1");
      expect(whileStopped.status).toBe(1);
      expect(whileStopped.stderr).toMatch(new RegExp(`v1 still protects \\d+ objects?, and no agent runs on ${p.dataDir}: start it`));

      // Rotated while it was stopped: the agent rewraps soon after it starts, so v1 can then be retired.
      agent = await startAgentProcess(p, ["--key-check-interval", "0.2"]);
      await waitFor("no object under v1", () => {
        const listed = JSON.parse(keys("list", "--json").stdout) as { versions: Array<{ version: number; objects: number }> };
        return listed.versions.find((v) => v.version === 1)?.objects === 0;
      });
      const retired = keys("retire", "v1");
      expect(retired.status, retired.stderr).toBe(0);
    } finally {
      await agent?.stop();
    }
  });
});
