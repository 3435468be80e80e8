/**
 * The pieces of the machine-independent scheduler cost: the frozen reference loop does the same work
 * every call, and the callgrind workload stops after the placements it is given (and refuses a bad count).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { REFERENCE_LOOP_OPS, referenceLoop, referenceLoopOpsPerS } from "../../bench/reference-loop.ts";
import { machineInfo } from "../../bench/scheduler-cost.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const runner = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "bench/scheduler-cost-run.ts", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });

describe("reference loop", () => {
  it("does the same work every call (same checksum) and reports a positive rate", () => {
    const a = referenceLoop();
    expect(referenceLoop()).toBe(a);
    expect(Number.isFinite(a) && a > 0).toBe(true);
    expect(REFERENCE_LOOP_OPS).toBe(400_000);
    expect(referenceLoopOpsPerS()).toBeGreaterThan(0);
  });

  it("names the machine: cpu model, cores, Node version", () => {
    const m = machineInfo();
    expect(m.cores).toBeGreaterThan(0);
    expect(m.node).toBe(process.version);
    expect(m.cpu_model.length).toBeGreaterThan(0);
  });
});

describe("the callgrind workload", () => {
  it("stops once the scheduler has made the placements asked for, and makes the same ones every time", () => {
    const a = runner("--decisions", "1500", "--runs", "400");
    expect(a.status, a.stderr).toBe(0);
    const { decisions } = JSON.parse(a.stdout.trim());
    expect(decisions).toBeGreaterThanOrEqual(1500);
    // 400 runs of five stages: 2,000 placements in all, so 1,500 stopped it early.
    expect(decisions).toBeLessThan(2000);
    expect(JSON.parse(runner("--decisions", "1500", "--runs", "400").stdout.trim()).decisions).toBe(decisions);
    expect(JSON.parse(runner("--decisions", "0", "--runs", "400").stdout.trim()).decisions).toBe(0);
  }, 120_000);

  it("refuses a count that is not a whole number, naming the option", () => {
    const r = runner("--decisions", "many");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--decisions must be a non-negative integer/);
  }, 60_000);
});
