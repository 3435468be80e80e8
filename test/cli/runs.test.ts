/**
 * `gpufabric runs` and `gpufabric profile` end to end: the CLI spawned as a process against the real
 * agent process, running the example contact sheet (real stages that write PNGs) and small Node stages.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify as stringifyYaml } from "yaml";
import { REPO_ROOT, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "../agent/service/harness.ts";

const TIMEOUT = 180_000;
const BIN = join(REPO_ROOT, "bin/gpufabric.mjs");
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with only the environment given (no GPUFABRIC_* of the machine running the tests). */
function cli(args: readonly string[], env: Record<string, string> = {}, stdin?: string): Promise<Result> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("GPUFABRIC_"))) as Record<string, string>;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });
}

describe("gpufabric runs against a real agent", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    platform = createPlatform({
      devices: [
        { id: "local-g0", node: "n0", memoryMiB: 24_576 },
        { id: "local-g1", node: "n0", memoryMiB: 24_576 },
      ],
    });
    // Simulated stages (the ComfyUI prompt's, with no ComfyUI server configured) take a tenth of their estimates.
    agent = await startAgentProcess(platform, ["--simulated-time-scale", "0.1"]);
    work = mkdtempSync(join(tmpdir(), "gpufabric-runs-cli-"));
    env = { GPUFABRIC_URL: agent.url, GPUFABRIC_TOKEN: platform.tokens.studio!, GPUFABRIC_CONFIG: join(work, "no-config.yaml") };
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let contactSheetRun: string;

  it(
    "submits the example contact sheet with --watch, shows each stage's progress, exits 0, and downloads its PNGs decrypted into DIR/<stage>/<name>",
    async () => {
      const submitted = await cli(["runs", "submit", "examples/workflows/contact-sheet.yaml", "--input", "seed=42", "--priority", "interactive", "--watch"], env);
      expect(submitted.stderr).toBe("");
      expect(submitted.code).toBe(0);
      const lines = submitted.stdout.trimEnd().split("\n");
      contactSheetRun = /^run (\S+) queued$/.exec(lines[0]!)![1]!;
      // One line per change: every stage was placed, ran and succeeded, in an order its needs allow.
      const stages = ["prompt", "render-1", "render-2", "render-3", "render-4", "upscale-1", "upscale-2", "upscale-3", "upscale-4", "contact-sheet"];
      for (const stage of stages) {
        for (const step of ["running", "succeeded"]) expect(lines.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d  ${stage} +${step}  \\(attempt 1`).test(l)), `${stage} ${step}`).toBe(true);
      }
      const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
      expect(at(/ prompt +succeeded/)).toBeLessThan(at(/ render-1 +running/));
      expect(at(/ upscale-4 +succeeded/)).toBeLessThan(at(/ contact-sheet +running/));
      expect(lines.some((l) => / render-\d +placed +\(attempt 1, on local-g[01]\)/.test(l))).toBe(true);
      expect(lines.at(-1)).toBe(`run ${contactSheetRun} succeeded: 10/10 stages succeeded`);

      const out = join(work, "artifacts");
      const downloaded = await cli(["runs", "artifacts", contactSheetRun, "--out", out, "--json"], env);
      expect(downloaded.code, downloaded.stderr).toBe(0);
      const files = JSON.parse(downloaded.stdout) as Array<{ stage: string; name: string; path: string; bytes: number }>;
      const sheet = files.find((f) => f.stage === "contact-sheet" && f.name === "contact-sheet.png")!;
      expect(sheet.path).toBe(join(out, "contact-sheet", "contact-sheet.png"));
      const pngs = files.filter((f) => f.name.endsWith(".png"));
      expect(pngs.length).toBeGreaterThanOrEqual(9);
      for (const f of pngs) {
        const bytes = readFileSync(join(out, f.stage, f.name));
        // Decrypted: the PNG signature, not the sealed envelope the data directory holds.
        expect(bytes.subarray(0, 8).equals(PNG_SIGNATURE), `${f.stage}/${f.name}`).toBe(true);
        expect(bytes.length).toBe(f.bytes);
      }
      expect(readdirSync(out).sort()).toEqual([...new Set(files.map((f) => f.stage))].sort());
      expect(statSync(join(out, "contact-sheet", "contact-sheet.png")).mode & 0o077).toBe(0);
      // Run again into the same folder: the files are replaced, not refused.
      const again = await cli(["runs", "artifacts", contactSheetRun, "--out", out], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(new RegExp(`${files.length} artifact\\(s\\) of run ${contactSheetRun} in ${out}\\n$`));
    },
    TIMEOUT
  );

  it.skipIf(!existsSync("/usr/bin/script"))(
    "in a terminal, redraws a table of every stage in place until the run ends",
    async () => {
      // script(1) gives the CLI a pseudo-terminal, as a person's shell would.
      const command = `'${process.execPath}' '${BIN}' runs watch ${contactSheetRun}`;
      const shown = await new Promise<Result>((resolve, reject) => {
        const child = spawn("/usr/bin/script", ["-qec", command, "/dev/null"], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr: "" }));
      });
      expect(shown.code).toBe(0);
      // Drawn at least twice (the first table, then the replayed events), each time over the previous one.
      expect(shown.stdout).toContain("\x1b[12A\r\x1b[J");
      const last = shown.stdout.split("\x1b[J").at(-1)!.replace(/\r/g, "").trimEnd().split("\n");
      expect(last[0]).toBe(`run ${contactSheetRun}  succeeded  10/10 stages succeeded`);
      expect(last[1]).toMatch(/^STAGE +STATUS +ATTEMPT +GPUS +TIME +REASON$/);
      expect(last.filter((l) => / succeeded +1 /.test(l))).toHaveLength(10);
      expect(last.at(-1)).toBe(`run ${contactSheetRun} succeeded: 10/10 stages succeeded`);
    },
    TIMEOUT
  );

  it(
    "lists and gets runs, as a table and as JSON, and prints a stage's logs",
    async () => {
      const listed = await cli(["runs", "list", "--status", "succeeded", "--json"], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((r) => r.id)).toContain(contactSheetRun);
      const table = await cli(["runs", "list"], env);
      expect(table.stdout).toMatch(/^ID +STATUS +WORKFLOW +PRIORITY +SUBMITTED BY +CREATED\n/);
      expect(table.stdout).toMatch(new RegExp(`${contactSheetRun} +succeeded +contact-sheet +interactive +tester`));

      const got = await cli(["runs", "get", contactSheetRun, "--json"], env);
      const run = JSON.parse(got.stdout) as { status: string; stages: Array<{ id: string; status: string }> };
      expect(run.status).toBe("succeeded");
      expect(run.stages).toHaveLength(10);
      const shown = await cli(["runs", "get", contactSheetRun], env);
      expect(shown.stdout).toMatch(/^run \S+ {2}succeeded\n/);
      expect(shown.stdout).toMatch(/\ncontact-sheet +contact-sheet\.png +\d+\n/);

      const logs = await cli(["runs", "logs", contactSheetRun, "render-1"], env);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toMatch(/^rendered '.*' as .*\.png \(256x192\)\n$/);
      const json = await cli(["runs", "logs", contactSheetRun, "render-1", "--attempt", "1", "--json"], env);
      expect(JSON.parse(json.stdout)).toMatchObject({ stage: "render-1", attempt: 1, truncated: false });
    },
    TIMEOUT
  );

  it(
    "follows a stage's logs until it ends, then cancels a long run, whose watch exits 1",
    async () => {
      const ticker = sleepyWorkflow("ticker", [{ id: "tick", script: "let n=0;const t=setInterval(()=>{console.log('tick '+(++n));if(n===6)clearInterval(t)},300)" }]);
      const file = join(work, "ticker.yaml");
      writeFileSync(file, stringifyYaml(ticker));
      const submitted = await cli(["runs", "submit", file, "--json"], env);
      const { id } = JSON.parse(submitted.stdout) as { id: string };
      const followed = await cli(["runs", "logs", id, "tick", "--follow"], env);
      expect(followed.code, followed.stderr).toBe(0);
      // Every line once, in order, though they were read in several polls.
      expect(followed.stdout).toBe("tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n");
      expect(followed.stderr).toBe("--- tick, attempt 1 ---\n");

      const long = join(work, "long.json");
      writeFileSync(long, JSON.stringify(sleepyWorkflow("long", [{ id: "sleep", ms: 60_000 }])));
      const started = await cli(["runs", "submit", long, "--json"], env);
      const longId = (JSON.parse(started.stdout) as { id: string }).id;
      const watching = cli(["runs", "watch", longId], env);
      const cancelled = await cli(["runs", "cancel", longId], env);
      expect(cancelled.code, cancelled.stderr).toBe(0);
      expect(cancelled.stdout).toBe(`run ${longId} cancelled\n`);
      const watched = await watching;
      expect(watched.code).toBe(1);
      expect(watched.stdout).toMatch(new RegExp(`run ${longId} cancelled\\n$`));
      expect(watched.stderr).toMatch(new RegExp(`^gpufabric: run ${longId} cancelled: 0/1 stages succeeded`));
      const events = await cli(["runs", "watch", longId, "--json"], env);
      const types = events.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { type: string }).type);
      expect(types[0]).toBe("run.accepted");
      expect(types.at(-1)).toBe("run.cancelled");
      expect(events.code).toBe(1);
    },
    TIMEOUT
  );

  it(
    "submits a ComfyUI API prompt file as it is, with --json lines for the watch",
    async () => {
      const submitted = await cli(["runs", "submit", "examples/comfyui/txt2img-upscale.json", "--watch", "--json"], env);
      expect(submitted.code, submitted.stderr).toBe(0);
      const lines = submitted.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).toMatchObject({ status: "queued", replayed: false });
      expect(lines[1]).toMatchObject({ type: "run.accepted", stage: null });
      expect(lines.filter((l) => l.type === "stage.succeeded").length).toBeGreaterThanOrEqual(1);
      expect(lines.at(-1)).toMatchObject({ type: "run.succeeded" });
      const run = JSON.parse((await cli(["runs", "get", String(lines[0]!.id), "--json"], env)).stdout) as { format: string; status: string };
      expect([run.format, run.status]).toEqual(["comfyui", "succeeded"]);
    },
    TIMEOUT
  );

  it(
    "says what is wrong: a refused token, an unknown run, an invalid workflow with its field, an unreachable agent",
    async () => {
      const badToken = await cli(["runs", "list"], { ...env, GPUFABRIC_TOKEN: "gf_not-a-real-token" });
      expect(badToken.code).toBe(1);
      expect(badToken.stderr).toMatch(new RegExp(`^gpufabric: the agent at ${agent.url} refused the token \\(401: .*\\): check the token from GPUFABRIC_TOKEN`));
      const missing = await cli(["runs", "get", "no-such-run"], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toBe("gpufabric: not found (404): no run 'no-such-run' (field 'runId')\n");
      const invalid = await cli(["runs", "submit", "--ref", "contact-sheet", "--priority", "batch", "--input", "x=1", "--idempotency-key", "has spaces"], env);
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toMatch(/^gpufabric: refused \(400 invalid-request\): Idempotency-Key: /);
      const typo = await cli(["runs", "submit", "--ref", "contact-shet"], env);
      expect(typo.code).toBe(1);
      expect(typo.stderr).toMatch(/^gpufabric: refused \(400 unknown-workflow\): workflowRef: no workflow 'contact-shet' .*contact-sheet/);
      const broken = join(work, "broken.json");
      writeFileSync(broken, JSON.stringify(sleepyWorkflow("broken", [{ id: "a", needs: ["nowhere"] }])));
      const refused = await cli(["runs", "submit", broken], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^gpufabric: refused \(400 [a-z-]+\): .*nowhere/);
      const noFile = await cli(["runs", "submit", join(work, "absent.yaml")], env);
      expect(noFile.code).toBe(2);
      expect(noFile.stderr).toMatch(/absent\.yaml cannot be read \(ENOENT\): give the workflow file to submit/);
      const unreachable = await cli(["runs", "list"], { ...env, GPUFABRIC_URL: "http://127.0.0.1:9" });
      expect(unreachable.code).toBe(1);
      expect(unreachable.stderr).toMatch(/^gpufabric: cannot reach the agent at http:\/\/127\.0\.0\.1:9 \(GPUFABRIC_URL\): ECONNREFUSED\. .*GPUFABRIC_URL/);
      const nothing = await cli(["runs", "list"], { GPUFABRIC_CONFIG: join(work, "none.yaml") });
      expect(nothing.code).toBe(2);
      expect(nothing.stderr).toMatch(/^gpufabric: no agent URL: pass --url and --token-file, set GPUFABRIC_URL and GPUFABRIC_TOKEN, or add a profile/);
    },
    TIMEOUT
  );

  it(
    "connects through profiles: added with the token on stdin, listed by fingerprint only, the environment over the profile, a readable config refused",
    async () => {
      const config = join(work, "profiles", "gpufabric", "config.yaml");
      const own = { GPUFABRIC_CONFIG: config };
      const added = await cli(["profile", "add", "local", "--url", agent.url, "--token-stdin"], own, `${platform.tokens.studio}\n`);
      expect(added.code, added.stderr).toBe(0);
      expect(statSync(config).mode & 0o777).toBe(0o600);
      expect(statSync(join(config, "..")).mode & 0o777).toBe(0o700);
      const other = await cli(["profile", "add", "other", "--url", "http://127.0.0.1:9", "--token-stdin", "--json"], own, "gf_other\n");
      expect(JSON.parse(other.stdout)).toEqual({ name: "other", url: "http://127.0.0.1:9", replaced: false, current: false, config });

      const listed = await cli(["profile", "list"], own);
      expect(listed.stdout).toMatch(new RegExp(`^\\* +local +${agent.url.replace(/\./g, "\\.")} +sha256:[0-9a-f]{12}`, "m"));
      expect(listed.stdout + listed.stderr).not.toContain(platform.tokens.studio!);
      expect(listed.stdout).not.toContain("gf_other");
      expect(JSON.parse((await cli(["profile", "list", "--json"], own)).stdout)).toMatchObject({ current: "local", profiles: [{ name: "local" }, { name: "other" }] });

      // The current profile alone is enough; GPUFABRIC_URL overrides it; --profile overrides the environment.
      expect((await cli(["runs", "list", "--json"], own)).code).toBe(0);
      const envWins = await cli(["runs", "list"], { ...own, GPUFABRIC_URL: "http://127.0.0.1:9", GPUFABRIC_TOKEN: "gf_env" });
      expect(envWins.stderr).toMatch(/cannot reach the agent at http:\/\/127\.0\.0\.1:9 \(GPUFABRIC_URL\)/);
      expect((await cli(["runs", "list", "--profile", "local"], { ...own, GPUFABRIC_URL: "http://127.0.0.1:9", GPUFABRIC_TOKEN: "gf_env" })).code).toBe(0);
      expect((await cli(["profile", "use", "other"], own)).stdout).toBe("current profile: other\n");
      expect((await cli(["runs", "list"], own)).stderr).toMatch(/cannot reach the agent at http:\/\/127\.0\.0\.1:9 \(profile 'other' in /);

      chmodSync(config, 0o644);
      const refused = await cli(["runs", "list"], own);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(`gpufabric: ${config} may be read or changed by its group or others (mode 0644) and can hold tokens: run 'chmod 600 ${config}'\n`);
      chmodSync(config, 0o600);
      expect((await cli(["profile", "remove", "other"], own)).stdout).toMatch(/^removed profile 'other'; no profile is current now/);
    },
    TIMEOUT
  );
});
