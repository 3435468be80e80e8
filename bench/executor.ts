/**
 * How quickly the ProcessExecutor gets a stage going: start() (fresh workspace, inputs copied in, log
 * files, spawn in its own process group) and the whole round trip of a program that exits at once,
 * with outputs committed. Prints JSON.
 *
 *   npm run bench:executor -- --json [--attempts 200] [--input-mib 4]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ProcessExecutor, type AttemptSpec } from "../runtime/agent/executors/index.ts";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`--${name} must be a whole number\n`);
    process.exit(2);
  }
  return value;
}

const attempts = Math.max(1, arg("attempts", 200));
const inputMiB = arg("input-mib", 4);
// A program that does nothing, so the figures are the executor's own cost.
const program = existsSync("/bin/true") ? ["/bin/true"] : [process.execPath, "-e", ""];

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50Ms: Number(percentile(sorted, 50).toFixed(3)),
    p99Ms: Number(percentile(sorted, 99).toFixed(3)),
    maxMs: Number(sorted[sorted.length - 1]!.toFixed(3)),
  };
};

const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-bench-exec-"));
try {
  const input = join(dataDir, "input.bin");
  writeFileSync(input, Buffer.alloc(inputMiB * 1024 * 1024, 7));
  const executor = new ProcessExecutor({ dataDir });
  const startMs: number[] = [];
  const roundTripMs: number[] = [];
  for (let i = 0; i < attempts; i++) {
    const spec: AttemptSpec = {
      attemptId: `a${i}`,
      runId: `run-${i}`,
      stageId: "stage",
      number: 1,
      stage: { id: "stage", needs: ["up"], resources: { gpus: 1, vramMiB: 1 }, run: { command: program, env: {} } },
      gpus: [{ id: "sim-0", uuid: null, simulated: true }],
      inputs: inputMiB > 0 ? [{ stageId: "up", artifacts: [{ name: "input.bin", path: input }] }] : [],
    };
    const t0 = performance.now();
    const running = await executor.start(spec);
    startMs.push(performance.now() - t0);
    const outcome = await running.done;
    if (outcome.reason !== "completed") throw new Error(`attempt ${i}: ${outcome.message}`);
    await running.commitOutputs();
    roundTripMs.push(performance.now() - t0);
  }
  const report = {
    bench: "executor",
    program: program.join(" "),
    node: process.version,
    cpus: cpus().length,
    attempts,
    inputMiB,
    start: summary(startMs),
    roundTrip: summary(roundTripMs),
  };
  if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`start p50 ${report.start.p50Ms} ms, p99 ${report.start.p99Ms} ms; round trip p50 ${report.roundTrip.p50Ms} ms\n`);
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
