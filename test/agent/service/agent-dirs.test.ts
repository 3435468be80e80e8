/**
 * `gpufabric agent` run by hand: its keyring, tokens, signing key and checkpoint folder as options; one agent
 * per data directory and per checkpoint folder (a second is refused, a crashed one's claim goes with its
 * process); and one line saying what it left when it stops.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, waitFor, type TestPlatform } from "./harness.ts";

const platforms: TestPlatform[] = [];
afterAll(() => platforms.forEach(removePlatform));

function platform(): TestPlatform {
  const p = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
  platforms.push(p);
  return p;
}

/** Starts an agent that is expected to be refused: its exit and what it said. */
function refusedAgent(p: TestPlatform, args: string[]) {
  return spawnSync(process.execPath, ["bin/gpufabric.mjs", "agent", "--config", p.configFile, "--host", "127.0.0.1", "--port", "0", "--inventory", "simulated", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
}

describe("gpufabric agent --keyring, --tokens, --signing-key, --audit-sink", () => {
  it("take the place of the config's mount paths", async () => {
    const p = platform();
    // The config's mount paths now lead nowhere: only the options can find the secrets and the sink.
    const moved = join(p.dir, "elsewhere");
    mkdirSync(moved);
    for (const name of ["keyring", "tokens", "audit-key", "audit"]) renameSync(join(p.dir, name), join(moved, name));
    const agent = await startAgentProcess(p, [
      "--keyring",
      join(moved, "keyring"),
      "--tokens",
      join(moved, "tokens"),
      "--signing-key",
      join(moved, "audit-key"),
      "--audit-sink",
      join(moved, "audit"),
    ]);
    try {
      expect((await client(agent.url, p.tokens.studio).get("/v1/gpus")).status).toBe(200);
    } finally {
      await agent.stop();
    }
    // The checkpoint sealing the log at stop went to the folder given.
    expect(readdirSync(join(moved, "audit")).filter((n) => /^checkpoint-\d{12}\.json$/.test(n)).length).toBeGreaterThan(0);
  });
});

describe("a data directory or checkpoint folder in use by another agent", () => {
  it("is refused to a second agent, naming the holder and the fix", async () => {
    const p = platform();
    const first = await startAgentProcess(p);
    try {
      const sameData = refusedAgent(p, ["--data-dir", p.dataDir]);
      expect(sameData.status).toBe(2);
      expect(sameData.stderr).toMatch(new RegExp(`dataDir: the data directory ${p.dataDir} is in use by another agent \\(pid ${first.child.pid} `));
      expect(sameData.stderr).toContain("--data-dir");
      // Its own data, the first one's checkpoint folder: two audit logs would interleave their checkpoints there.
      const sameSink = refusedAgent(p, ["--data-dir", join(p.dir, "other-data")]);
      expect(sameSink.status).toBe(2);
      expect(sameSink.stderr).toMatch(new RegExp(`security\\.audit\\.sink\\.mountPath: the checkpoint folder ${p.sinkDir} is in use by another agent \\(pid ${first.child.pid} `));
      expect(sameSink.stderr).toContain("--audit-sink");
      expect((await client(first.url, p.tokens.studio).get("/v1/gpus")).status).toBe(200);
    } finally {
      await first.stop();
    }
    // Refused before it wrote anything: the first agent's log still verifies against its checkpoints.
    const verify = spawnSync(process.execPath, ["bin/gpufabric.mjs", "audit", "verify", "--data-dir", p.dataDir, "--public-key", p.publicKeyPath, "--checkpoints", p.sinkDir], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  });

  it("is free again once the agent that held it crashed", async () => {
    const p = platform();
    const crashed = await startAgentProcess(p);
    await crashed.crash();
    const next = await startAgentProcess(p);
    try {
      expect((await client(next.url, p.tokens.studio).get("/v1/gpus")).status).toBe(200);
    } finally {
      await next.stop();
    }
  });
});

describe("gpufabric agent stopping on a signal", () => {
  it("says in one line what it left: runs for the next start, stages stopped for recovery", async () => {
    const p = platform();
    const agent = await startAgentProcess(p);
    try {
      const studio = client(agent.url, p.tokens.studio);
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("held", [{ id: "long", ms: 60_000 }, { id: "after", needs: ["long"], ms: 10 }]) });
      expect(submitted.status).toBe(202);
      await waitFor("the long stage to run", async () => (await studio.get(`/v1/runs/${submitted.body.id}`)).body.stages?.some((s: { status: string }) => s.status === "running"));
    } finally {
      await agent.stop();
    }
    expect(agent.child.exitCode).toBe(0);
    expect(agent.output()).toMatch(/gpufabric agent: stopped on SIGTERM: 1 unfinished run kept for the next start; 1 running stage stopped \(it runs again then\)/);
  });
});
