/**
 * The stage sandbox, piece by piece: the bwrap command line (pure), then real stages through the
 * process executor: limits, a graceful stop, the refusal of a program kept inside a protected folder,
 * and the agent refusing to start where there is no sandbox.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessExecutor, type AttemptSpec } from "../../runtime/agent/executors/index.ts";
import { STAGE_VIEW, bubblewrapArgs, masksWithin, mountPointParents, probeSandbox, programDirsOf, type SandboxPlan, type StageSandbox } from "../../runtime/agent/sandbox/index.ts";
import { IsolationSchema, type IsolationConfig } from "../../runtime/config/schema.ts";
import type { Stage } from "../../runtime/graph/model.ts";
import { REPO_ROOT, createPlatform, removePlatform } from "./service/harness.ts";

const plan = (over: Partial<SandboxPlan> = {}): SandboxPlan => ({
  inputsDir: "/scratch/w/inputs",
  outputsDir: "/scratch/w/outputs",
  tmpDir: "/scratch/w/tmp",
  systemDirs: [{ path: "/usr" }, { path: "/bin", symlinkTo: "usr/bin" }, { path: "/etc" }],
  programDirs: ["/srv/app/stages"],
  modelCacheDir: null,
  protectedPaths: [],
  devices: [],
  network: false,
  rlimits: { dataBytes: 1024, cpuSeconds: null, processes: 64, openFiles: 256, fileSizeBytes: 4096 },
  prlimit: "/usr/bin/prlimit",
  command: ["node", "/srv/app/stages/render.mjs"],
  ...over,
});

/** The pairs `flag a b` of a bwrap argv, as strings, for lookups. */
const triples = (args: string[]) => args.map((a, i) => `${a} ${args[i + 1]} ${args[i + 2]}`);

describe("bubblewrapArgs", () => {
  it("binds the system read-only, the inputs read-only, outputs and tmp writable, and nothing else of the host", () => {
    const args = bubblewrapArgs(plan());
    const t = triples(args);
    expect(t).toContain(`--ro-bind /usr /usr`);
    expect(t).toContain(`--symlink usr/bin /bin`);
    expect(t).toContain(`--ro-bind /srv/app/stages /srv/app/stages`);
    expect(t).toContain(`--ro-bind /scratch/w/inputs ${STAGE_VIEW.inputs}`);
    expect(t).toContain(`--bind /scratch/w/outputs ${STAGE_VIEW.outputs}`);
    expect(t).toContain(`--bind /scratch/w/tmp ${STAGE_VIEW.tmp}`);
    const writable = args.flatMap((a, i) => (a === "--bind" ? [args[i + 1]] : []));
    expect(writable.sort()).toEqual(["/scratch/w/outputs", "/scratch/w/tmp"]);
    for (const flag of ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent"]) expect(args).toContain(flag);
    expect(args.join(" ")).toContain("--cap-drop ALL");
    // The command runs under prlimit, after every sandbox option.
    const tail = args.slice(args.indexOf("--") + 1);
    expect(tail.slice(0, 1)).toEqual(["/usr/bin/prlimit"]);
    expect(tail).toContain("--nproc=64");
    expect(tail).toContain("--fsize=4096");
    expect(tail.slice(-2)).toEqual(["node", "/srv/app/stages/render.mjs"]);
  });

  it("shares the network only when asked, and binds GPU devices and /sys only for real GPUs", () => {
    expect(bubblewrapArgs(plan({ network: true }))).toContain("--share-net");
    expect(bubblewrapArgs(plan({ network: true }))).not.toContain("--unshare-net");
    const gpu = triples(bubblewrapArgs(plan({ devices: ["/dev/nvidia0", "/dev/nvidiactl"] })));
    expect(gpu).toContain("--dev-bind /dev/nvidia0 /dev/nvidia0");
    expect(gpu).toContain("--ro-bind-try /sys /sys");
    expect(bubblewrapArgs(plan())).not.toContain("/sys");
  });

  it("masks a protected path that lies inside a bound folder (a folder with an empty one, a file with /dev/null)", () => {
    const args = bubblewrapArgs(
      plan({
        programDirs: ["/repo"],
        protectedPaths: [
          { path: "/repo/.gpufabric", kind: "dir" },
          { path: "/repo/.gpufabric/keyring", kind: "dir" },
          { path: "/etc/gpufabric/platform.json", kind: "file" },
          { path: "/var/lib/gpufabric", kind: "dir" },
        ],
      })
    );
    const t = triples(args);
    expect(t).toContain("--tmpfs /repo/.gpufabric --remount-ro");
    expect(t).toContain("--ro-bind /dev/null /etc/gpufabric/platform.json");
    // Nested and unbound ones need no mask of their own.
    expect(args).not.toContain("/repo/.gpufabric/keyring");
    expect(args).not.toContain("/var/lib/gpufabric");
    expect(masksWithin([{ path: "/a/b", kind: "dir" }], ["/a/bc"])).toEqual([]);
  });

  it("as root: no user namespace, setpriv drops the stage to its uid with no capability, and mount points open to it", () => {
    const args = bubblewrapArgs(plan({ programDirs: ["/root/repo/stages", "/tmp/checkout/stages"], dropTo: { uid: 200001, gid: 200001, setpriv: "/usr/bin/setpriv" } }));
    expect(args).not.toContain("--unshare-user-try");
    const tail = args.slice(args.indexOf("--") + 1);
    expect(tail.slice(0, 8)).toEqual(["/usr/bin/setpriv", "--reuid=200001", "--regid=200001", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]);
    expect(tail[8]).toBe("/usr/bin/prlimit");
    const line = ` ${args.join(" ")} `;
    expect(line).toContain(" --perms 0755 --dir /root ");
    expect(line).toContain(" --perms 0755 --dir /root/repo ");
    expect(line).toContain(" --perms 0755 --dir /tmp/checkout ");
    expect(line).not.toContain(" --perms 0755 --dir /tmp ");
    // The private /tmp first, then the folders made inside it.
    expect(args.indexOf("/scratch/w/tmp")).toBeLessThan(args.indexOf("/tmp/checkout"));
    expect(mountPointParents(["/usr/share/x/y", "/a/b/c"], ["/usr"])).toEqual(["/a", "/a/b"]);
  });

  it("takes a program's folder, and a toolchain's root for a program in a bin folder", () => {
    const isFile = () => true;
    expect(programDirsOf(["node", "/srv/app/run.mjs", "--flag", "rel/x"], "/usr/bin/node", ["/usr"], isFile)).toEqual(["/srv/app"]);
    expect(programDirsOf(["python", "/opt2/x.py"], "/home/u/.venv/bin/python", ["/usr"], isFile)).toEqual(["/home/u/.venv", "/opt2"]);
    expect(programDirsOf(["x", "/srv/app/sub/y"], "/srv/app/x", [], isFile)).toEqual(["/srv/app"]);
  });
});

const probed = await probeSandbox({ isolation: IsolationSchema.parse({}), tenants: ["t"], protectedPaths: [], scratchDir: tmpdir() });
if (!probed.ok) console.warn(`sandboxed executor tests skipped: ${probed.reason}`);

describe.runIf(probed.ok)("stages through the sandbox", () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), "gpufabric-sandbox-"));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  async function sandboxWith(isolation: Partial<IsolationConfig>, protectedPaths: string[] = []): Promise<StageSandbox> {
    const result = await probeSandbox({ isolation: IsolationSchema.parse(isolation), tenants: ["studio", "rival"], protectedPaths, scratchDir: dataDir });
    if (!result.ok) throw new Error(result.reason);
    return result.sandbox;
  }
  const stage = (script: string, timeoutSeconds?: number): Stage => ({
    id: "s",
    needs: [],
    resources: { gpus: 0, vramMiB: 0 },
    run: { command: [process.execPath, "-e", script], env: {}, ...(timeoutSeconds !== undefined && { timeoutSeconds }) },
  });
  const spec = (s: Stage, tenant = "studio"): AttemptSpec => ({ attemptId: "a1", runId: "run-1", tenant, stageId: s.id, number: 1, stage: s, gpus: [], inputs: [] });

  it("caps the processes a stage may start and the size of a file it may write", async () => {
    // RLIMIT_NPROC counts every process of the uid: a uid range of its own, so no other test's stages count.
    const uidRangeStart = 3_000_000 + Math.floor(Math.random() * 1_000_000);
    const sandbox = await sandboxWith({ uidRangeStart, limits: { memoryMiB: 4096, cpus: 1, processes: 16, openFiles: 256, fileSizeMiB: 1 } });
    const executor = new ProcessExecutor({ dataDir, sandbox, killGraceMs: 200 });
    const forks = await executor.start(
      spec(
        stage(`
          const { spawn } = require("node:child_process");
          let started = 0, refused = 0;
          const kids = [];
          for (let i = 0; i < 40; i++) {
            try { const c = spawn("/bin/sleep", ["5"]); c.on("error", () => refused++); kids.push(c); started++; } catch { refused++; }
          }
          setTimeout(() => { console.log(JSON.stringify({ started, refused })); for (const k of kids) k.kill(); process.exit(0); }, 500);
        `)
      )
    );
    const forkOutcome = await forks.done;
    expect(forkOutcome.reason).toBe("completed");
    const counts = JSON.parse(readFileSync(forkOutcome.logs!.stdout, "utf8")) as { started: number; refused: number };
    expect(counts.refused).toBeGreaterThan(0);

    const big = await executor.start(
      spec(stage(`require("node:fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/big.bin", Buffer.alloc(3 * 1024 * 1024))`))
    );
    const bigOutcome = await big.done;
    expect(bigOutcome.reason).not.toBe("completed");
  }, 60_000);

  it("stops a stage gracefully: its own processes get SIGTERM before the sandbox goes", async () => {
    const sandbox = await sandboxWith({});
    const executor = new ProcessExecutor({ dataDir, sandbox, killGraceMs: 20_000 });
    const running = await executor.start(
      spec(stage(`process.on("SIGTERM", () => { console.error("got SIGTERM"); process.exit(0); }); console.error("ready"); setInterval(() => {}, 1000);`))
    );
    const stderrLog = join(dataDir, "logs", "run-1", "s", "1.stderr.log");
    const deadline = Date.now() + 15_000;
    while (!(readIf(stderrLog).includes("ready")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    running.cancel();
    const outcome = await running.done;
    expect(outcome.reason).toBe("cancelled");
    expect(readFileSync(outcome.logs!.stderr, "utf8")).toContain("got SIGTERM");
  }, 60_000);

  it("sees the run's own stage folders and never the agent's layout in its environment", async () => {
    const sandbox = await sandboxWith({});
    const executor = new ProcessExecutor({ dataDir, sandbox, killGraceMs: 200 });
    const running = await executor.start(spec(stage(`console.log(JSON.stringify({ i: process.env.GPUFABRIC_INPUT_DIR, o: process.env.GPUFABRIC_OUTPUT_DIR, h: process.env.HOME, t: process.env.TMPDIR, cwd: process.cwd() }))`)));
    const outcome = await running.done;
    expect(outcome.reason).toBe("completed");
    expect(JSON.parse(readFileSync(outcome.logs!.stdout, "utf8"))).toEqual({ i: STAGE_VIEW.inputs, o: STAGE_VIEW.outputs, h: STAGE_VIEW.home, t: STAGE_VIEW.tmp, cwd: STAGE_VIEW.cwd });
  }, 60_000);

  it("runs a program kept under /tmp, although the stage gets a /tmp of its own", async () => {
    const programDir = mkdtempSync(join("/tmp", "gpufabric-program-"));
    chmodSync(programDir, 0o755); // as a checkout is: the stage's uid may read it
    try {
      writeFileSync(join(programDir, "tool.mjs"), "require('node:fs').writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + '/ran.txt', 'ran')\n".replace("require('node:fs')", "(await import('node:fs'))"));
      const sandbox = await sandboxWith({});
      const executor = new ProcessExecutor({ dataDir, sandbox });
      const s: Stage = { id: "s", needs: [], resources: { gpus: 0, vramMiB: 0 }, run: { command: [process.execPath, join(programDir, "tool.mjs")], env: {} } };
      const running = await executor.start(spec(s));
      const outcome = await running.done;
      expect(outcome.reason, readIf(outcome.logs?.stderr ?? "")).toBe("completed");
      expect((await running.commitOutputs()).map((a) => a.name)).toEqual(["ran.txt"]);
    } finally {
      rmSync(programDir, { recursive: true, force: true });
    }
  });

  it("runs a program behind a folder only root may enter, and refuses one the tenant's uid cannot read", async () => {
    const sandbox = await sandboxWith({});
    if (sandbox.options.identity.mode !== "per-tenant") return; // stages share the agent's uid: they reach what it reaches
    const closed = mkdtempSync(join(tmpdir(), "gpufabric-closed-"));
    try {
      chmodSync(closed, 0o700); // as /root is: a checkout there must still run
      mkdirSync(join(closed, "stages"), { mode: 0o755 });
      writeFileSync(join(closed, "stages", "tool.mjs"), "(await import('node:fs')).writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + '/ran.txt', String(process.getuid()))\n");
      const executor = new ProcessExecutor({ dataDir, sandbox });
      const s: Stage = { id: "s", needs: [], resources: { gpus: 0, vramMiB: 0 }, run: { command: [process.execPath, join(closed, "stages", "tool.mjs")], env: {} } };
      const ran = await executor.start(spec(s));
      const outcome = await ran.done;
      expect(outcome.reason, readIf(outcome.logs?.stderr ?? "")).toBe("completed");
      const [artifact] = await ran.commitOutputs();
      expect(readFileSync(artifact!.path, "utf8")).toBe(String(sandbox.uidOf("studio")));

      chmodSync(join(closed, "stages"), 0o700);
      const refused = await (await executor.start({ ...spec(s), attemptId: "a2", number: 2 })).done;
      expect(refused.reason).toBe("setup-failed");
      expect(refused.message).toContain(`cannot read ${join(closed, "stages")}`);
      expect(refused.message).toMatch(/chmod o\+rx/);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });

  it("refuses to run a program kept inside a folder stages must not see", async () => {
    const secretDir = mkdtempSync(join(tmpdir(), "gpufabric-secret-"));
    try {
      writeFileSync(join(secretDir, "tool.mjs"), "console.log('hi')\n");
      const sandbox = await sandboxWith({}, [secretDir]);
      const executor = new ProcessExecutor({ dataDir, sandbox });
      const s: Stage = { id: "s", needs: [], resources: { gpus: 0, vramMiB: 0 }, run: { command: [process.execPath, join(secretDir, "tool.mjs")], env: {} } };
      const outcome = await (await executor.start(spec(s))).done;
      expect(outcome.reason).toBe("setup-failed");
      expect(outcome.message).toMatch(/must never see/);
    } finally {
      rmSync(secretDir, { recursive: true, force: true });
    }
  });

  it("refuses a tenant it has no uid for, where stages get uids of their own", async () => {
    const sandbox = await sandboxWith({});
    if (sandbox.options.identity.mode !== "per-tenant") return; // stages share the agent's uid: no per-tenant uid to refuse
    const executor = new ProcessExecutor({ dataDir, sandbox });
    const outcome = await (await executor.start(spec(stage("0"), "stranger"))).done;
    expect(outcome.reason).toBe("setup-failed");
    expect(outcome.message).toMatch(/tenant 'stranger'/);
  });
});

describe("the isolation section of the platform config", () => {
  it("has secure defaults and refuses sandbox 'none' where the agent starts stages itself", () => {
    expect(IsolationSchema.parse({})).toMatchObject({ mode: "bubblewrap", sandbox: "bubblewrap", allowEgress: false, modelCacheDir: null });
    const refused = IsolationSchema.safeParse({ sandbox: "none" });
    expect(refused.success).toBe(false);
    expect(JSON.stringify(refused.error?.issues)).toMatch(/needs mode 'runner'/);
    expect(IsolationSchema.safeParse({ mode: "runner", sandbox: "none" }).success).toBe(true);
    expect(IsolationSchema.safeParse({ uidRangeStart: 0 }).success).toBe(false);
  });
});

describe("an agent that cannot isolate stages", () => {
  it("refuses to start, naming the fix and the explicit way out", () => {
    const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
    try {
      const empty = join(platform.dir, "empty-path");
      mkdirSync(empty);
      const result = spawnSync(
        process.execPath,
        [join(REPO_ROOT, "bin/gpufabric.mjs"), "agent", "--config", platform.configFile, "--data-dir", platform.dataDir, "--port", "0", "--inventory", "simulated"],
        { cwd: REPO_ROOT, env: { PATH: empty, HOME: platform.dir }, encoding: "utf8", timeout: 60_000 }
      );
      expect(result.status).not.toBe(0);
      expect(result.stderr + result.stdout).toMatch(/bubblewrap \(bwrap\) is not installed/);
      expect(result.stderr + result.stdout).toMatch(/--unsafe-shared-identity/);
    } finally {
      removePlatform(platform);
    }
  }, 90_000);
});

function readIf(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
