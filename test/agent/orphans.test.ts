import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { stopOrphanedAttempt } from "../../runtime/agent/executors/index.ts";

const agent = fileURLToPath(new URL("./fixtures/executor-crash-agent.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-orphans-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts the stand-in agent, lets it start its stage, kills it with SIGKILL; returns the stage's pids. */
async function crashAgentMidStage(runId: string): Promise<{ stagePid: number; helperPid: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", agent, dataDir, runId], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.on("exit", () => reject(new Error("the stand-in agent exited before starting its stage")));
  });
  const [, pid, workspace] = line.split(" ");
  const pidFile = join(workspace!, "pids");
  await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").includes(" "), "the stage to start its helper");
  const [stagePid, helperPid] = readFileSync(pidFile, "utf8").split(" ").map(Number) as [number, number];
  expect(stagePid).toBe(Number(pid));
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  return { stagePid, helperPid };
}

describe("stopOrphanedAttempt", () => {
  it("stops the stage processes an agent killed with SIGKILL left behind", async () => {
    const { stagePid, helperPid } = await crashAgentMidStage("run-orphan");
    // The stage runs in its own process group: it survived its agent.
    expect(isAlive(stagePid)).toBe(true);
    expect(isAlive(helperPid)).toBe(true);
    // A record that does not match the process's attempt is left alone.
    expect(stopOrphanedAttempt({ pid: stagePid, runId: "run-orphan", stageId: "render", number: 2 })).toBe("not-ours");
    expect(isAlive(stagePid)).toBe(true);

    expect(stopOrphanedAttempt({ pid: stagePid, runId: "run-orphan", stageId: "render", number: 1 })).toBe("stopped");
    await waitFor(() => !isAlive(stagePid) && !isAlive(helperPid), "the stage and its helper to be gone");
    expect(stopOrphanedAttempt({ pid: stagePid, runId: "run-orphan", stageId: "render", number: 1 })).toBe("gone");
  });

  it("never kills a process that is not a stage of the agent", async () => {
    const other = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
    try {
      expect(stopOrphanedAttempt({ pid: other.pid!, runId: "run-x", stageId: "render", number: 1 })).toBe("not-ours");
      expect(isAlive(other.pid!)).toBe(true);
      expect(stopOrphanedAttempt({ pid: null, runId: "run-x", stageId: "render", number: 1 })).toBe("gone");
    } finally {
      process.kill(-other.pid!, "SIGKILL");
    }
  });
});
