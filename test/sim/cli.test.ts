import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const bin = new URL("../../bin/gpufabric.mjs", import.meta.url).pathname;
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const dir = mkdtempSync(join(tmpdir(), "simulate-"));
const workflow = join(dir, "wf.yaml");
writeFileSync(
  workflow,
  [
    "apiVersion: gpufabric.dev/v1",
    "kind: Workflow",
    "metadata: { name: fan-out }",
    "spec:",
    "  stages:",
    "    - { id: a, resources: { gpus: 1, vram: 10Gi, model: m }, estimate: { durationSeconds: 10, modelLoadSeconds: 5 } }",
    "    - { id: b, resources: { gpus: 1, vram: 10Gi, model: m }, estimate: { durationSeconds: 10, modelLoadSeconds: 5 } }",
    "    - { id: join, needs: [a, b], resources: { gpus: 1, vram: 4Gi }, estimate: { durationSeconds: 2 } }",
  ].join("\n"),
);

describe("gpufabric simulate", () => {
  it("prints the benchmark's fields as JSON, the same for the same seed", () => {
    const run = () => cli("simulate", "--workload", workflow, "--pool", "2xA10G-24", "--runs", "3", "--seed", "5", "--json");
    const first = run();
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout) as Record<string, unknown>;
    for (const f of ["makespan_s", "lower_bound_s", "best_known_s", "interactive_p50_s", "interactive_p99_s", "batch_makespan_s", "oom_events", "model_loads", "gpu_busy_pct", "jain_fairness", "decisions_per_s"]) expect(out).toHaveProperty(f);
    // 3 runs of a+b in parallel (15 s with the load, 10 s after) and a 2 s join on 2 GPUs.
    expect(out).toMatchObject({ policy: "gpufabric", oom_events: 0, model_loads: 2, runs_completed: 3 });
    expect(run().stdout).toBe(first.stdout);
  });

  it("exits 2 naming the field for a bad pool spec or policy", () => {
    const bad = cli("simulate", "--workload", workflow, "--pool", "2xA10G");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--pool[0]");
    const policy = cli("simulate", "--workload", workflow, "--policy", "random");
    expect(policy.code).toBe(2);
    expect(policy.stderr).toContain("unknown policy 'random'");
  });

  it("exits 1 with the reason when a stage fits no GPU of the pool", () => {
    const r = cli("simulate", "--workload", workflow, "--pool", "2xT4-8");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rejected at submission.*needs 10 GiB but the largest GPU offers 7 GiB/);
  });
});

describe("gpufabric plan", () => {
  it("shows placements, reasons and a timeline", () => {
    const r = cli("plan", workflow, "--pool", "2xA10G-24");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("predicted makespan 17 s");
    expect(r.stdout).toMatch(/join\s+a10g-24-n0-g\d/);
    expect(r.stdout).toContain("loads m (5 s)");
    const json = JSON.parse(cli("plan", workflow, "--pool", "2xA10G-24", "--json").stdout) as { stages: { stage: string; startS: number; endS: number }[] };
    expect(json.stages.map((s) => [s.stage, s.startS, s.endS])).toEqual([["a", 0, 15], ["b", 0, 15], ["join", 15, 17]]);
  });
});
