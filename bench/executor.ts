/**
 * How quickly the ProcessExecutor gets a stage going: start() (fresh workspace, inputs copied in, log
 * files, spawn in its own process group) and the whole round trip of a program that exits at once,
 * with outputs committed. Measured side by side, attempt by attempt alternating, without a sandbox and
 * inside the bubblewrap sandbox every agent uses (where this machine can run it): the difference of the
 * round trips' medians is what the sandbox adds to a stage's start. Prints JSON.
 *
 *   npm run bench:executor -- --json [--attempts 200] [--input-mib 4]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { ProcessExecutor, type AttemptSpec } from "../runtime/agent/executors/index.ts";
import { probeSandbox } from "../runtime/agent/sandbox/index.ts";
import { IsolationSchema } from "../runtime/config/schema.ts";

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
  const probe = await probeSandbox({ isolation: IsolationSchema.parse({}), tenants: ["bench"], protectedPaths: [], scratchDir: dataDir });
  if (!probe.ok) process.stderr.write(`no sandbox on this machine (${probe.reason}): only the plain executor is measured\n`);
  const modes = [
    { name: "plain", executor: new ProcessExecutor({ dataDir }), startMs: [] as number[], roundTripMs: [] as number[] },
    ...(probe.ok ? [{ name: "sandboxed", executor: new ProcessExecutor({ dataDir, sandbox: probe.sandbox }), startMs: [] as number[], roundTripMs: [] as number[] }] : []),
  ];
  for (let i = 0; i < attempts; i++) {
    // Alternating, so that whatever else the machine does weighs on both alike.
    for (const mode of i % 2 === 0 ? modes : [...modes].reverse()) {
      const spec: AttemptSpec = {
        attemptId: `a${i}`,
        runId: `run-${mode.name}-${i}`,
        tenant: "bench",
        stageId: "stage",
        number: 1,
        stage: { id: "stage", needs: ["up"], resources: { gpus: 1, vramMiB: 1 }, run: { command: program, env: {} } },
        gpus: [{ id: "sim-0", uuid: null, simulated: true }],
        inputs: inputMiB > 0 ? [{ stageId: "up", artifacts: [{ name: "input.bin", path: input }] }] : [],
      };
      const t0 = performance.now();
      const running = await mode.executor.start(spec);
      mode.startMs.push(performance.now() - t0);
      const outcome = await running.done;
      if (outcome.reason !== "completed") throw new Error(`${mode.name} attempt ${i}: ${outcome.message}`);
      await running.commitOutputs();
      mode.roundTripMs.push(performance.now() - t0);
    }
  }
  const byMode = Object.fromEntries(modes.map((m) => [m.name, { start: summary(m.startMs), roundTrip: summary(m.roundTripMs) }]));
  const plain = byMode.plain!;
  const sandboxed = byMode.sandboxed;
  const report = {
    bench: "executor",
    program: program.join(" "),
    node: process.version,
    cpus: cpus().length,
    attempts,
    inputMiB,
    // The figures without a sandbox, as before.
    start: plain.start,
    roundTrip: plain.roundTrip,
    sandbox: sandboxed
      ? {
          identity: probe.ok ? probe.identity : null,
          start: sandboxed.start,
          roundTrip: sandboxed.roundTrip,
          addedRoundTripP50Ms: Number((sandboxed.roundTrip.p50Ms - plain.roundTrip.p50Ms).toFixed(3)),
          targetAddedP50Ms: 25,
          met: sandboxed.roundTrip.p50Ms - plain.roundTrip.p50Ms < 25,
        }
      : { unavailable: probe.ok ? null : probe.reason },
  };
  if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    process.stdout.write(`plain: start p50 ${plain.start.p50Ms} ms, round trip p50 ${plain.roundTrip.p50Ms} ms\n`);
    if (sandboxed) process.stdout.write(`sandboxed: start p50 ${sandboxed.start.p50Ms} ms, round trip p50 ${sandboxed.roundTrip.p50Ms} ms (+${report.sandbox.addedRoundTripP50Ms} ms)\n`);
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
