/**
 * How long the agent's event loop stalls while it accepts a large valid submission: a ComfyUI prompt
 * of `--nodes` nodes in one chain is posted to the real agent process while a client polls /healthz
 * back to back. Prints the submission's answer time, the /healthz latencies meanwhile (max, p50, p99,
 * count) and the agent's own largest event-loop delay over the same window (from /metrics), which
 * tells blocking from CPU contention: the client shares the machine's cores with the agent. The first
 * round starts the submission thread; medians are over the later rounds. Prints JSON.
 *
 *   npm run bench:agent-large-submit -- [--nodes 10000] [--rounds 6]
 */
import { request } from "node:http";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { intArg, percentile } from "./support.ts";
import { createPlatform, removePlatform, startAgentProcess } from "../test/agent/service/harness.ts";
import { chainPrompt } from "../test/agent/service/large-prompt.ts";


function call(url: string, method: string, headers: Record<string, string>, body?: string): Promise<number> {
  return fetchText(url, method, headers, body).then((r) => r.status);
}

function fetchText(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { ...headers, ...(body !== undefined && { "content-length": String(Buffer.byteLength(body)) }) } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The agent's own largest event-loop delay since the previous scrape (prom-client resets it), in ms. */
async function eventLoopLagMaxMs(url: string, headers: Record<string, string>): Promise<number> {
  const { text } = await fetchText(`${url}/metrics`, "GET", { authorization: headers.authorization! });
  const line = text.split("\n").find((l) => l.startsWith("gpufabric_agent_nodejs_eventloop_lag_max_seconds "));
  return Math.round(Number(line?.split(" ")[1] ?? NaN) * 1000);
}


const median = (values: readonly number[]) => percentile(values, 50);
const nodes = intArg("nodes", 10_000);
const rounds = intArg("rounds", 6);
const platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
const agent = await startAgentProcess(platform);
try {
  const body = JSON.stringify({ workflow: chainPrompt(nodes) });
  const headers = { authorization: `Bearer ${platform.tokens.studio!}`, "content-type": "application/json" };
  const results = [];
  for (let round = 0; round < rounds; round++) {
    const latencies: number[] = [];
    await eventLoopLagMaxMs(agent.url, headers);
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
      eventLoopLagMaxMs: await eventLoopLagMaxMs(agent.url, headers),
      healthz: { count: latencies.length, maxMs: Math.round(Math.max(0, ...latencies)), p50Ms: Math.round(percentile(latencies, 50)), p99Ms: Math.round(percentile(latencies, 99)) },
    });
  }
  // The first round starts the submission thread; the summary is over the later rounds.
  const warm = results.length > 1 ? results.slice(1) : results;
  const summary = {
    nodes,
    bodyBytes: Buffer.byteLength(body),
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    healthzMaxMs: { median: median(warm.map((r) => r.healthz.maxMs)), worst: Math.max(...warm.map((r) => r.healthz.maxMs)) },
    eventLoopLagMaxMs: { median: median(warm.map((r) => r.eventLoopLagMaxMs)), worst: Math.max(...warm.map((r) => r.eventLoopLagMaxMs)) },
    submitMs: median(warm.map((r) => r.submitMs)),
    rounds: results,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await agent.stop();
  removePlatform(platform);
}
