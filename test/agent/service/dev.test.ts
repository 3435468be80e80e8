/** `gpufabric dev --once --json`: synthesizes main.ts, runs the example workflows on a local agent, exits 0 when all succeeded. */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./harness.ts";

describe("gpufabric dev --once --json", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-dev-test-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("runs every example workflow to success and summarizes them as JSON", () => {
    const result = spawnSync(process.execPath, ["bin/gpufabric.mjs", "dev", "--once", "--json", "--data-dir", dataDir], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 240_000,
    });
    // On failure, the agent's own account of it (its log lives in the data dir, removed after the test).
    const agentErrors = () => {
      const log = join(dataDir, "agent.log");
      return existsSync(log) ? readFileSync(log, "utf8").split("\n").filter((l) => /"level":(40|50|60)/.test(l)).slice(-5).join("\n") : "(no agent.log)";
    };
    expect(result.status, `${result.stderr}\nagent log warnings and errors:\n${agentErrors()}`).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      ok: boolean;
      url: string;
      runs: Array<{ workflow: string; status: string; done: number; total: number; simulated: boolean; artifacts: string[] }>;
    };
    expect(summary.ok).toBe(true);
    expect(summary.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const byName = new Map(summary.runs.map((r) => [r.workflow, r]));
    expect([...byName.keys()].sort()).toEqual(["contact-sheet", "txt2img-upscale"]);
    for (const run of summary.runs) {
      expect(run.status).toBe("succeeded");
      expect(run.done).toBe(run.total);
    }
    expect(byName.get("contact-sheet")!.artifacts).toContain("contact-sheet/contact-sheet.png");
    // The ComfyUI prompt has no worker here: it ran simulated, said so, and produced nothing.
    expect(byName.get("txt2img-upscale")!.simulated).toBe(true);
    expect(byName.get("txt2img-upscale")!.artifacts).toEqual([]);
    // Tokens are printed once and stored only as hashes; the agent's log never holds them.
    const printed = [...result.stderr.matchAll(/(gf_[A-Za-z0-9_-]{43})/g)].map((m) => m[1]!);
    expect(printed.length).toBeGreaterThan(0);
    const stored = readFileSync(join(dataDir, "tokens", "animation"), "utf8");
    const log = readFileSync(join(dataDir, "agent.log"), "utf8");
    for (const token of printed) {
      expect(stored).not.toContain(token);
      expect(log).not.toContain(token);
    }
    expect(existsSync(join(dataDir, "agent.db"))).toBe(true);
  }, 300_000);
});

describe("gpufabric dev --once", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-dev-once-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("counts finished and running stages apart, and prints no links to the agent it stopped", () => {
    const result = spawnSync(process.execPath, ["bin/gpufabric.mjs", "dev", "--once", "--data-dir", dataDir], { cwd: REPO_ROOT, encoding: "utf8", timeout: 240_000 });
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout.split("\n");
    const progress = lines.filter((l) => /^contact-sheet: \d+\/\d+ stages/.test(l));
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress) expect(line).toMatch(/^contact-sheet: \d+\/10 stages done, (queued|none running|succeeded|\d+ running( on .+)?)  \d+\.\ds$/);
    // Once the examples end the agent exits: a URL to it would lead nowhere.
    const results = lines.findIndex((l) => /^✓ contact-sheet/.test(l));
    expect(results).toBeGreaterThan(0);
    expect(lines.slice(results).join("\n")).not.toMatch(/https?:\/\//);
    expect(result.stdout).not.toContain("try: curl");
    expect(lines.slice(results).join("\n")).toMatch(/the agent stopped/);
  }, 300_000);
});
