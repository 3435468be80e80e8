/**
 * Runner mode: the agent starts no stage process itself; `gpufabric runner` (in Kubernetes, a container
 * of the pod that holds no Secret) starts them, over a Unix socket. Real processes on both sides.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeSandbox } from "../../../runtime/agent/sandbox/index.ts";
import { IsolationSchema } from "../../../runtime/config/schema.ts";
import { REPO_ROOT, client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const sandboxWorks = (await probeSandbox({ isolation: IsolationSchema.parse({}), tenants: ["t"], protectedPaths: [], scratchDir: "/tmp" })).ok;
if (!sandboxWorks) console.warn("runner tests skipped: no bubblewrap sandbox on this machine");

function startRunnerProcess(socket: string): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "runner", "--socket", socket], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the runner did not listen within 60 s:\n${output}`)), 60_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      if (output.includes("runner listening")) {
        clearTimeout(timer);
        resolve({
          child,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once("exit", r)));
          },
        });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`the runner exited (${code}):\n${output}`)));
  });
}

/** The parent pid of a host process, from /proc. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}
const ancestors = (pid: number) => {
  const chain: number[] = [];
  for (let p = parentOf(pid); p !== undefined && p > 1 && chain.length < 64; p = parentOf(p)) chain.push(p);
  return chain;
};
function processesWith(token: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(token);
      } catch {
        return false;
      }
    });
}
async function until<T>(what: string, probe: () => T | undefined, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(sandboxWorks)("an agent whose stages start in a runner", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let runner: Awaited<ReturnType<typeof startRunnerProcess>>;

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }], isolation: { mode: "runner", runnerSocket: "/tmp/placeholder.sock" } });
    // The socket lives in a folder of the test platform (the volume the two containers share, in a pod).
    const socket = join(platform.dir, "runner", "runner.sock");
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.isolation.runnerSocket = socket;
    (await import("node:fs")).writeFileSync(platform.configFile, JSON.stringify(config));
    runner = await startRunnerProcess(socket);
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    await runner?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "runs stages as the runner's descendants, never the agent's, and their outputs come back sealed",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const token = `runner-stage-${Date.now()}`;
      const script = `setTimeout(() => require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/done.txt", "ran"), 1500) // ${token}`;
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("via-runner", [{ id: "a", script }]) });
      expect(submitted.status).toBe(202);
      const stagePid = await until("the stage to start", () => processesWith(token).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith(process.execPath)));
      const chain = ancestors(stagePid);
      expect(chain).toContain(runner.child.pid);
      expect(chain).not.toContain(agent.child.pid);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      expect((await studio.get(`/v1/runs/${run.id}/artifacts/done.txt`)).body).toBe("ran");
      const logs = await studio.get(`/v1/runs/${run.id}/stages/a/logs`);
      expect(logs.status).toBe(200);
    },
    TIMEOUT
  );

  it(
    "stops what a killed agent's runner was running, and the restarted agent reruns it",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const token = `runner-orphan-${Date.now()}`;
      const script = `if (process.env.GPUFABRIC_ATTEMPT === "1") setInterval(() => {}, 1000); else require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/second.txt", "attempt " + process.env.GPUFABRIC_ATTEMPT); // ${token}`;
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("orphan", [{ id: "a", script }]) });
      expect(submitted.status).toBe(202);
      await until("the stage to start", () => (processesWith(token).length > 0 ? true : undefined));
      await agent.crash();
      await until("the runner to stop the stage", () => (processesWith(token).length === 0 ? true : undefined));
      agent = await startAgentProcess(platform);
      const again = client(agent.url, platform.tokens.studio!);
      const run = await again.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      expect((await again.get(`/v1/runs/${run.id}/artifacts/second.txt`)).body).toBe("attempt 2");
    },
    TIMEOUT
  );
});
