import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { ProcessExecutor, artifactNameProblem, type AttemptGpu, type AttemptSpec, type ProcessExecutorOptions } from "../../runtime/agent/executors/index.ts";
import { CappedLog } from "../../runtime/agent/executors/capped-log.ts";
import type { Stage } from "../../runtime/graph/model.ts";

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "gpufabric-exec-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

const REAL_GPUS: AttemptGpu[] = [
  { id: "node-a-g0", uuid: "GPU-11111111-2222-3333-4444-555555555555", simulated: false },
  { id: "node-a-g1", uuid: "GPU-66666666-7777-8888-9999-000000000000", simulated: false },
];

function nodeStage(id: string, script: string, extra: Partial<Stage> = {}, env: Record<string, string> = {}, timeoutSeconds?: number): Stage {
  return {
    id,
    needs: [],
    resources: { gpus: 1, vramMiB: 1024 },
    run: { command: [process.execPath, "-e", script], env, ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }) },
    ...extra,
  };
}

function attempt(stage: Stage, overrides: Partial<AttemptSpec> = {}): AttemptSpec {
  return { attemptId: `att-${stage.id}`, runId: "run-1", stageId: stage.id, number: 1, stage, gpus: REAL_GPUS, inputs: [], ...overrides };
}

function executor(options: Partial<ProcessExecutorOptions> = {}): ProcessExecutor {
  return new ProcessExecutor({ dataDir, killGraceMs: 200, ...options });
}

/** Whether a process still runs (a zombie awaiting its reaper counts as gone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function waitFor(condition: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("ProcessExecutor", () => {
  it("gives the stage its GPUs, ids and folders, and none of the agent's own environment", async () => {
    process.env.GPUFABRIC_TEST_AGENT_SECRET = "do-not-leak";
    try {
      const stage = nodeStage(
        "render",
        `require("fs").writeFileSync(require("path").join(process.env.GPUFABRIC_OUTPUT_DIR, "env.json"), JSON.stringify(process.env))`,
        {},
        { RENDER_QUALITY: "high" }
      );
      const running = await executor().start(attempt(stage));
      const outcome = await running.done;
      expect(outcome).toMatchObject({ reason: "completed", exitCode: 0, signal: null, simulated: false });
      const [env] = await running.commitOutputs();
      const seen = JSON.parse(readFileSync(env!.path, "utf8")) as Record<string, string>;
      expect(seen.CUDA_VISIBLE_DEVICES).toBe(`${REAL_GPUS[0]!.uuid},${REAL_GPUS[1]!.uuid}`);
      expect(seen.NVIDIA_VISIBLE_DEVICES).toBe(seen.CUDA_VISIBLE_DEVICES);
      expect(seen.GPUFABRIC_GPUS_SIMULATED).toBe("false");
      expect(seen.GPUFABRIC_RUN_ID).toBe("run-1");
      expect(seen.GPUFABRIC_STAGE_ID).toBe("render");
      expect(seen.RENDER_QUALITY).toBe("high");
      expect(seen.HOME).toBe(running.workspace);
      expect(seen.GPUFABRIC_OUTPUT_DIR).toBe(join(running.workspace!, "outputs"));
      expect(seen.GPUFABRIC_INPUT_DIR).toBe(join(running.workspace!, "inputs"));
      expect(seen.GPUFABRIC_TEST_AGENT_SECRET).toBeUndefined();
      const allowed = ["PATH", "LANG", "TZ", "HOME", "TMPDIR", "RENDER_QUALITY", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"];
      // Node itself may add a variable or two on some platforms; none may come from the agent.
      expect(Object.keys(seen).filter((k) => !allowed.includes(k) && !k.startsWith("GPUFABRIC_") && k in process.env)).toEqual([]);
    } finally {
      delete process.env.GPUFABRIC_TEST_AGENT_SECRET;
    }
  });

  it("passes simulated device ids, and hides every GPU from a CPU-only stage", async () => {
    const script = `require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/d.txt", process.env.CUDA_VISIBLE_DEVICES + "|" + process.env.NVIDIA_VISIBLE_DEVICES + "|" + process.env.GPUFABRIC_GPUS_SIMULATED)`;
    const sim = await executor().start(attempt(nodeStage("sim", script), { gpus: [{ id: "pool-n0-g3", uuid: null, simulated: true }] }));
    await sim.done;
    expect(readFileSync((await sim.commitOutputs())[0]!.path, "utf8")).toBe("pool-n0-g3|pool-n0-g3|true");
    const cpu = await executor().start(attempt(nodeStage("cpu", script), { gpus: [] }));
    await cpu.done;
    expect(readFileSync((await cpu.commitOutputs())[0]!.path, "utf8")).toBe("|none|false");
  });

  it("hands a stage the committed outputs of the stages it needs, and commits its own", async () => {
    const exec = executor();
    const produce = await exec.start(
      attempt(
        nodeStage(
          "produce",
          `const fs = require("fs"); fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/words.txt", "alpha beta"); fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/n.txt", "2")`
        )
      )
    );
    expect((await produce.done).reason).toBe("completed");
    const produced = await produce.commitOutputs();
    expect(produced.map((a) => a.name)).toEqual(["n.txt", "words.txt"]);
    expect(await produce.commitOutputs()).toEqual(produced);
    expect(existsSync(join(produce.workspace!, "outputs"))).toBe(false);

    const consume = await exec.start(
      attempt(
        nodeStage(
          "consume",
          `const fs = require("fs"); const dir = process.env.GPUFABRIC_INPUT_DIR + "/produce"; fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/upper.txt", fs.readFileSync(dir + "/words.txt", "utf8").toUpperCase() + " " + fs.readdirSync(dir).join(","))`,
          { needs: ["produce"] }
        ),
        { inputs: [{ stageId: "produce", artifacts: produced }] }
      )
    );
    expect((await consume.done).reason).toBe("completed");
    const [upper] = await consume.commitOutputs();
    const content = readFileSync(upper!.path);
    expect(content.toString()).toBe("ALPHA BETA n.txt,words.txt");
    expect(upper).toMatchObject({ name: "upper.txt", bytes: content.length, sha256: createHash("sha256").update(content).digest("hex") });
    expect(upper!.path).toBe(join(dataDir, "artifacts", "run-1", "consume", "1", "upper.txt"));
    // Inputs are copies: the upstream artifact is untouched by whatever the stage does to its inputs.
    expect(statSync(join(consume.workspace!, "inputs", "produce", "words.txt")).ino).not.toBe(statSync(produced[1]!.path).ino);
  });

  it("keeps stdout and stderr as logs, capped in size", async () => {
    const running = await executor({ logCapBytes: 100 }).start(
      attempt(nodeStage("chatty", `process.stdout.write("x".repeat(10000)); process.stderr.write("warning: low light\\n")`))
    );
    const outcome = await running.done;
    expect(outcome.reason).toBe("completed");
    const stdout = readFileSync(outcome.logs!.stdout, "utf8");
    expect(stdout.startsWith("x".repeat(100) + "\n[gpufabric: log truncated at 100 bytes; 9900 more bytes dropped]")).toBe(true);
    expect(readFileSync(outcome.logs!.stderr, "utf8")).toBe("warning: low light\n");
    expect(outcome.logs!.truncated).toBe(true);
    expect(outcome.logs!.stdout).toBe(join(dataDir, "logs", "run-1", "chatty", "1.stdout.log"));
  });

  it("records a non-zero exit and commits nothing", async () => {
    const running = await executor().start(attempt(nodeStage("broken", `console.error("bad input"); process.exit(3)`)));
    const outcome = await running.done;
    expect(outcome).toMatchObject({ reason: "exit-code", exitCode: 3, signal: null });
    expect(outcome.message).toMatch(/code 3/);
    await expect(running.commitOutputs()).rejects.toThrow(/only a completed attempt's outputs are committed/);
    expect(existsSync(join(dataDir, "artifacts"))).toBe(false);
  });

  it("stops a stage at its timeout, with SIGKILL when it ignores SIGTERM", async () => {
    const stage = nodeStage("stuck", `process.on("SIGTERM", () => {}); setInterval(() => {}, 1000)`, {}, {}, 0.3);
    const outcome = await (await executor().start(attempt(stage))).done;
    expect(outcome).toMatchObject({ reason: "timeout", exitCode: null, signal: "SIGKILL" });
    expect(outcome.message).toMatch(/timeoutSeconds/);
  });

  it("cancel kills the whole process group: the stage and the process it spawned", async () => {
    const script = `
      const { spawn } = require("child_process");
      const grandchild = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
      require("fs").writeFileSync(process.env.HOME + "/pids", process.pid + " " + grandchild.pid);
      setInterval(() => {}, 1000);`;
    const running = await executor().start(attempt(nodeStage("spawner", script)));
    const pidFile = join(running.workspace!, "pids");
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").includes(" "), "the stage to report its pids");
    const [stagePid, grandchildPid] = readFileSync(pidFile, "utf8").split(" ").map(Number) as [number, number];
    expect(stagePid).toBe(running.pid);
    expect(isAlive(grandchildPid)).toBe(true);

    running.cancel();
    const outcome = await running.done;
    expect(outcome).toMatchObject({ reason: "cancelled", signal: "SIGTERM" });
    expect(isAlive(stagePid)).toBe(false);
    await waitFor(() => !isAlive(grandchildPid), "the grandchild to be gone");
  });

  it("kills what a stage leaves running in its group when it exits", async () => {
    const script = `
      const { spawn } = require("child_process");
      const bg = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
      require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/bg.pid", String(bg.pid));
      bg.unref();`;
    const running = await executor().start(attempt(nodeStage("leaky", script)));
    expect((await running.done).reason).toBe("completed");
    const [pidFile] = await running.commitOutputs();
    const bgPid = Number(readFileSync(pidFile!.path, "utf8"));
    await waitFor(() => !isAlive(bgPid), "the leftover process to be gone");
  });

  it("refuses hostile outputs: links, folders and names with control characters; commits none of them", async () => {
    const script = `
      const fs = require("fs"); const out = process.env.GPUFABRIC_OUTPUT_DIR;
      fs.writeFileSync(out + "/ok.txt", "fine");
      fs.symlinkSync("/etc/passwd", out + "/passwd");
      fs.mkdirSync(out + "/nested"); fs.writeFileSync(out + "/nested/x", "x");
      fs.writeFileSync(out + "/two\\nlines", "x");`;
    const running = await executor().start(attempt(nodeStage("hostile", script)));
    expect((await running.done).reason).toBe("completed");
    const err = await running.commitOutputs().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const issues = (err as ValidationError).issues;
    expect(issues.map((i) => i.field).sort()).toEqual(["GPUFABRIC_OUTPUT_DIR/nested", "GPUFABRIC_OUTPUT_DIR/passwd", "GPUFABRIC_OUTPUT_DIR/two\\nlines"]);
    expect(issues.find((i) => i.field.endsWith("passwd"))!.message).toMatch(/symbolic link/);
    expect(existsSync(join(dataDir, "artifacts"))).toBe(false);
  });

  it("refuses inputs that are not regular files, and never runs the stage then", async () => {
    const outside = join(dataDir, "elsewhere");
    mkdirSync(outside);
    const running = await executor().start(
      attempt(nodeStage("reader", `require("fs").writeFileSync(process.env.HOME + "/ran", "1")`), {
        inputs: [{ stageId: "up", artifacts: [{ name: "dir", path: outside }] }],
      })
    );
    const outcome = await running.done;
    expect(outcome.reason).toBe("setup-failed");
    expect(outcome.message).toMatch(/not a regular file/);
    expect(running.pid).toBeNull();
  });

  it("reports a program that cannot be started, and a stage with no command", async () => {
    const stage: Stage = { id: "missing", needs: [], resources: { gpus: 0, vramMiB: 0 }, run: { command: [join(dataDir, "no-such-program")], env: {} } };
    const outcome = await (await executor().start(attempt(stage))).done;
    expect(outcome.reason).toBe("setup-failed");
    expect(outcome.message).toMatch(/could not start .*ENOENT/);
    const nul = await (await executor().start(attempt({ ...stage, id: "nul", run: { command: [process.execPath, "-e", "1\u0000"], env: {} } }))).done;
    expect(nul.reason).toBe("setup-failed");
    expect(nul.message).toMatch(/null bytes/);
    const bare = await (await executor().start(attempt({ id: "bare", needs: [], resources: { gpus: 1, vramMiB: 1 } }))).done;
    expect(bare).toMatchObject({ reason: "setup-failed" });
    expect(bare.message).toMatch(/simulated executor/);
  });

  it("refuses a GPU held by a ComfyUI server container (comfyui.image): this container cannot see it", async () => {
    const held = await (await executor().start(attempt(nodeStage("held", "1"), { gpus: [{ id: "n0-g0", uuid: null, simulated: false }] }))).done;
    expect(held).toMatchObject({ reason: "setup-failed", simulated: false });
    expect(held.message).toMatch(/gpu n0-g0 is held by its ComfyUI server container \(comfyui\.image\): only ComfyUI stages run on it/);
  });

  it("records the peak VRAM the sampler read on real GPUs, and samples nothing on simulated ones", async () => {
    const readings = [300, 1500, 700];
    const calls: Array<{ uuids: readonly string[]; group: number }> = [];
    const sampler = {
      async sample(uuids: readonly string[], group: number) {
        calls.push({ uuids, group });
        const value = readings[Math.min(calls.length - 1, readings.length - 1)];
        // After the third reading, let the stage finish.
        if (calls.length === readings.length) writeFileSync(join(dataDir, "workspaces", "run-1", "sampled", "1", "stop"), "");
        return value;
      },
    };
    const stage = nodeStage("sampled", `const fs = require("fs"); setInterval(() => { if (fs.existsSync(process.env.HOME + "/stop")) process.exit(0); }, 10)`);
    const running = await executor({ vramSampler: sampler, sampleIntervalMs: 10 }).start(attempt(stage));
    const outcome = await running.done;
    expect(outcome.peakVramMiB).toBe(1500);
    expect(calls[0]).toEqual({ uuids: REAL_GPUS.map((g) => g.uuid), group: running.pid });

    calls.length = 0;
    const simulated = await executor({ vramSampler: sampler, sampleIntervalMs: 10 }).start(
      attempt(nodeStage("sim-sampled", `setTimeout(() => {}, 100)`), { gpus: [{ id: "sim-0", uuid: null, simulated: true }] })
    );
    expect((await simulated.done).peakVramMiB).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it("refuses options that make no sense, naming them", () => {
    expect(() => new ProcessExecutor({ dataDir: "relative/dir", logCapBytes: 0, killGraceMs: -1 })).toThrow(ValidationError);
    try {
      new ProcessExecutor({ dataDir: "relative/dir", logCapBytes: 0, killGraceMs: -1 });
    } catch (err) {
      expect((err as ValidationError).issues.map((i) => i.field)).toEqual(["dataDir", "logCapBytes", "killGraceMs"]);
    }
  });

  it("gives every attempt a fresh workspace", async () => {
    const stage = nodeStage(
      "again",
      `const fs = require("fs"); fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/listing.txt", fs.readdirSync(process.env.HOME).sort().join(","))`
    );
    const first = await executor().start(attempt(stage));
    await first.done;
    writeFileSync(join(first.workspace!, "leftover"), "from attempt 1");
    const second = await executor().start(attempt(stage, { number: 2, attemptId: "att-again-2" }));
    await second.done;
    expect(second.workspace).not.toBe(first.workspace);
    const [listing] = await second.commitOutputs();
    expect(readFileSync(listing!.path, "utf8")).toBe("inputs,outputs,tmp");
    expect(readdirSync(join(dataDir, "workspaces", "run-1", "again")).sort()).toEqual(["1", "2"]);
  });
});

describe("artifactNameProblem", () => {
  it.each([["../etc/passwd"], ["a/b"], [".."], ["."], [""], ["a\\b"], ["nul\u0000byte"], ["tab\there"], ["bad\uFFFDutf8"], ["x".repeat(256)]])(
    "refuses %j",
    (name) => expect(artifactNameProblem(name)).toBeDefined()
  );
  it.each([["image.png"], ["contact sheet (final).png"], [".hidden"], ["résumé.pdf"], ["x".repeat(255)]])("accepts %j", (name) =>
    expect(artifactNameProblem(name)).toBeUndefined()
  );
});

describe("CappedLog", () => {
  it.skipIf(!existsSync("/dev/full"))("notes a failed write (a full disk) instead of throwing", () => {
    const log = new CappedLog("/dev/full", 100);
    expect(() => log.write(Buffer.from("render started\n"))).not.toThrow();
    expect(log.failure).toMatch(/ENOSPC/);
    log.write(Buffer.from("more"));
    expect(() => log.close()).not.toThrow();
  });
});
