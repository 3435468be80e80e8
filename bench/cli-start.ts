/**
 * How fast the compiled CLI starts: the median wall time over --runs N runs (default 15, after one warm-up)
 * of `node -e 0` (the floor any Node program pays), `gpufabric --help` and `gpufabric check --help`, both from
 * the build in dist/ (built first unless --no-build). Target: both medians under 300 ms. `--source` adds
 * `gpufabric --help` run from the TypeScript sources (through tsx) for comparison.
 *
 *   npm run bench:cli-start -- --json
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { intArg, percentile, round } from "./support.ts";

const TARGET_MS = 300;
const runs = intArg("runs", 15);
const json = process.argv.includes("--json");
const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO_ROOT, "bin", "gpufabric.mjs");

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly runs: number;
}

function timeOnce(c: Case): number {
  const start = performance.now();
  const result = spawnSync(process.execPath, c.args, { cwd: REPO_ROOT, env: { ...process.env, ...c.env }, stdio: ["ignore", "pipe", "pipe"] });
  const ms = performance.now() - start;
  if (result.status !== 0) throw new Error(`${c.name} exited ${result.status ?? result.signal}: ${result.stderr.toString().slice(-2000)}`);
  return ms;
}

function measure(c: Case): { medianMs: number; p90Ms: number; minMs: number; runs: number } {
  timeOnce(c); // warm-up: the file system cache
  const times = Array.from({ length: c.runs }, () => timeOnce(c));
  return { medianMs: round(percentile(times, 50)), p90Ms: round(percentile(times, 90)), minMs: round(Math.min(...times)), runs: c.runs };
}

if (!process.argv.includes("--no-build")) {
  const build = spawnSync(process.execPath, [join(REPO_ROOT, "scripts", "build.mjs")], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  if (build.status !== 0) throw new Error("npm run build failed: see the error above");
}
// "0": the build, whatever the sources' times (bin/gpufabric.mjs); a tree edited during the bench still measures it.
const compiled = { GPUFABRIC_FROM_SOURCE: "0" };
const cases: Case[] = [
  { name: "node -e 0", args: ["-e", "0"], runs },
  { name: "gpufabric --help", args: [BIN, "--help"], env: compiled, runs },
  { name: "gpufabric check --help", args: [BIN, "check", "--help"], env: compiled, runs },
  ...(process.argv.includes("--source") ? [{ name: "gpufabric --help (sources, tsx)", args: [BIN, "--help"], env: { GPUFABRIC_FROM_SOURCE: "1" }, runs: 3 }] : []),
];
const results = Object.fromEntries(cases.map((c) => [c.name, measure(c)]));
const gated = ["gpufabric --help", "gpufabric check --help"];
const report = {
  targetMedianMs: TARGET_MS,
  meetsTarget: gated.every((name) => results[name]!.medianMs < TARGET_MS),
  // On a loaded machine every process starts slower: what the CLI adds to Node's own start tells more there.
  medianOverNodeMs: Object.fromEntries(gated.map((name) => [name, round(results[name]!.medianMs - results["node -e 0"]!.medianMs)])),
  node: process.version,
  results,
};
if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  for (const [name, r] of Object.entries(results)) process.stdout.write(`${name.padEnd(34)} median ${r.medianMs} ms  p90 ${r.p90Ms} ms  min ${r.minMs} ms  (${r.runs} runs)\n`);
  process.stdout.write(`target: median under ${TARGET_MS} ms for ${gated.join(" and ")}: ${report.meetsTarget ? "met" : "NOT met"}\n`);
}
