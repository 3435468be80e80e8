/**
 * How long the agent's event loop stalls while it accepts a large valid submission: a ComfyUI prompt
 * of `--nodes` nodes in one chain is posted to the real agent process while a client polls /healthz
 * back to back. Prints the submission's answer time and the /healthz latencies meanwhile (max, p50,
 * p99, count). The client shares the machine's cores with the agent. Prints JSON.
 *
 *   npm run bench:agent-large-submit -- [--nodes 10000] [--rounds 3]
 */
import { request } from "node:http";
import { performance } from "node:perf_hooks";
import { createPlatform, removePlatform, startAgentProcess } from "../test/agent/service/harness.ts";
import { chainPrompt } from "../test/agent/service/large-prompt.ts";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const n = Number(i === -1 ? fallback : process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} must be a whole number of 1 or more\n`);
    process.exit(2);
  }
  return n;
}

function call(url: string, method: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, ...(body !== undefined && { "content-length": String(Buffer.byteLength(body)) }) } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const percentile = (values: readonly number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
};

const nodes = arg("nodes", 10_000);
const rounds = arg("rounds", 3);
const platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
const agent = await startAgentProcess(platform);
try {
  const body = JSON.stringify({ workflow: chainPrompt(nodes) });
  const headers = { authorization: `Bearer ${platform.tokens.studio!}`, "content-type": "application/json" };
  const results = [];
  for (let round = 0; round < rounds; round++) {
    const latencies: number[] = [];
    let inFlight = true;
    const started = performance.now();
    const submission = call(`${agent.url}/v1/runs`, "POST", headers, body).then((status) => {
      inFlight = false;
      return { status, ms: performance.now() - started };
    });
    while (inFlight) {
      const t = performance.now();
      await call(`${agent.url}/healthz`, "GET", {});
      latencies.push(performance.now() - t);
    }
    const answered = await submission;
    results.push({
      status: answered.status,
      submitMs: Math.round(answered.ms),
      healthz: { count: latencies.length, maxMs: Math.round(Math.max(0, ...latencies)), p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)) },
    });
  }
  process.stdout.write(`${JSON.stringify({ nodes, bodyBytes: Buffer.byteLength(body), rounds: results, maxHealthzMs: Math.max(...results.map((r) => r.healthz.maxMs)) }, null, 2)}\n`);
} finally {
  await agent.stop();
  removePlatform(platform);
}
