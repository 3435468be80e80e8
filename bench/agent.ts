/**
 * The agent over HTTP, as a client sees it (the real agent process), for each store durability
 * (`full`: synchronous=FULL, survives power loss; `normal`: survives kill -9 of the agent):
 *  - durable submissions, closed loop: `--runs` runs (a 2-stage workflow document each) from
 *    `--concurrency` clients at once; runs/s sustained (202 = durable in the store) and latencies;
 *  - submit latency, open loop: runs sent at a fixed `--rate` per second for `--seconds`, whatever
 *    the answers, so latency is measured at that sustained rate instead of behind a client queue;
 *  - memory: the agent's RSS once the closed-loop runs (and 500 warm-up runs) are all queued (one GPU,
 *    held by a long stage);
 *  - dispatch latency: stage ready (the store's event) → its process started (the attempt's start
 *    stamp), on free GPUs, for root and dependent stages.
 *  - the cost of one fsync on the data directory's file system, beside the durable rates: a `full` rate
 *    on a memory file system (tmpfs) is not called durable, and only accepted (202) runs count.
 * The load generator shares the machine's cores with the agent. Prints JSON.
 *
 *   npm run bench:agent -- --json [--runs 10000] [--concurrency 64] [--rate 1000] [--seconds 5] [--dispatch-runs 100]
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { Agent } from "node:http";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { intArg, percentile, post, round } from "./support.ts";
import { client, createPlatform, sleepyWorkflow, startAgentProcess, waitFor } from "../test/agent/service/harness.ts";


const runs = intArg("runs", "10000");
const concurrency = intArg("concurrency", "64");
const dispatchRuns = intArg("dispatch-runs", "100");
const rate = intArg("rate", "1000");
const openSeconds = intArg("seconds", "5");
const json = process.argv.includes("--json");
const note = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`);
};



function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.replace(/\D+/g, "")) / 1024;
}

async function submissions(durability: "full" | "normal") {
  const platform = createPlatform({ devices: [{ id: "bench-g0", node: "n0", memoryMiB: 24_576 }] });
  const agent = await startAgentProcess(platform, ["--durability", durability]);
  try {
    const api = client(agent.url, platform.tokens.studio!);
    // One long stage holds the only GPU, so every submitted run stays queued.
    const blocker = await api.post("/v1/runs", { workflow: sleepyWorkflow("blocker", [{ id: "hold", ms: 600_000 }]) });
    await waitFor("the blocker to run", async () => (await api.get(`/v1/runs/${blocker.body.id}`)).body.status === "running");
    const body = JSON.stringify({
      workflow: sleepyWorkflow("queued", [
        { id: "render", ms: 10 },
        { id: "upscale", needs: ["render"], ms: 10 },
      ]),
    });
    const headers = { authorization: `Bearer ${platform.tokens.studio}`, "content-type": "application/json" };
    const rssBefore = rssMiB(agent.child.pid!);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: concurrency });
    const submitUrl = `${agent.url}/v1/runs`;
    // Warm-up (not timed): the agent's code paths get compiled before they are measured.
    const warmup = Math.min(500, runs);
    let warmed = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, warmup) }, async () => {
        while (warmed++ < warmup) await post(submitUrl, headers, body, keepAlive);
      })
    );
    const latencies: number[] = [];
    let next = 0;
    let failures = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < runs) {
          next++;
          const t0 = performance.now();
          const status = await post(submitUrl, headers, body, keepAlive);
          latencies.push(performance.now() - t0);
          if (status !== 202) failures++;
        }
      })
    );
    const seconds = (performance.now() - started) / 1000;
    note(`${durability}: submitted ${runs} runs in ${seconds.toFixed(2)} s`);
    const queued = await api.get("/v1/queue");
    // Let the agent settle (group commits, garbage collection) before reading its memory.
    await new Promise((r) => setTimeout(r, 2000));
    const rss = rssMiB(agent.child.pid!);

    // Open loop: one request every 1/rate s, each timed on its own.
    const open: number[] = [];
    let openFailures = 0;
    const pending: Promise<void>[] = [];
    const total = rate * openSeconds;
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const sent = performance.now();
      pending.push(
        post(submitUrl, headers, body, keepAlive).then((status) => {
          // Latency from when the request was due, so a client that fell behind is not flattered.
          open.push(performance.now() - Math.min(sent, due));
          if (status !== 202) openFailures++;
        })
      );
    }
    await Promise.all(pending);
    keepAlive.destroy();
    const achieved = total / ((performance.now() - t0) / 1000);
    note(`${durability}: open loop at ${rate}/s: p99 ${percentile(open, 99).toFixed(1)} ms`);
    return {
      durability,
      openLoop: {
        rate,
        seconds: openSeconds,
        runs: total,
        achievedPerSecond: Math.round(achieved),
        failures: openFailures,
        p50Ms: round(percentile(open, 50)),
        p99Ms: round(percentile(open, 99)),
      },
      closedLoop: {
        runs,
        concurrency,
        failures,
        seconds: round(seconds, 2),
        // Only runs the agent accepted (202) count: a refused request is no durable submission.
        runsPerSecond: Math.round((runs - failures) / seconds),
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
        maxMs: round(Math.max(...latencies)),
      },
      memory: { queuedRuns: queued.body.activeRuns - 1, warmupRuns: warmup, rssMiB: Math.round(rss), rssBeforeMiB: Math.round(rssBefore) },
    };
  } finally {
    await agent.stop();
    rmSync(platform.dir, { recursive: true, force: true });
  }
}

async function dispatch() {
  const platform = createPlatform({ devices: [0, 1, 2, 3].map((i) => ({ id: `bench-g${i}`, node: "n0", memoryMiB: 24_576 })) });
  const agent = await startAgentProcess(platform);
  try {
    const api = client(agent.url, platform.tokens.studio!);
    const root: number[] = [];
    const dependent: number[] = [];
    for (let i = 0; i < dispatchRuns; i++) {
      const submitted = await api.post("/v1/runs", {
        workflow: sleepyWorkflow("dispatch", [
          { id: "first", ms: 1 },
          { id: "second", needs: ["first"], ms: 1 },
        ]),
      });
      const run = await api.waitForRun(submitted.body.id);
      if (run.status !== "succeeded") throw new Error(`dispatch run ${run.id} ${run.status}`);
      const events = String((await api.get(`/v1/runs/${run.id}/events`)).body);
      const at = (type: string, stage: string | null) => {
        for (const block of events.split("\n\n")) {
          if (!block.includes(`event: ${type}\n`)) continue;
          const data = JSON.parse(block.slice(block.indexOf("data: ") + 6)) as { stage: string | null; at: string };
          if (data.stage === stage) return Date.parse(data.at);
        }
        throw new Error(`no ${type} event for ${stage}`);
      };
      const startedAt = (id: string) => Date.parse(run.stages.find((s: { id: string }) => s.id === id).startedAt);
      root.push(startedAt("first") - at("run.accepted", null));
      dependent.push(startedAt("second") - at("stage.ready", "second"));
    }
    const all = [...root, ...dependent];
    return {
      dispatch: {
        samples: all.length,
        p50Ms: percentile(all, 50),
        p99Ms: percentile(all, 99),
        rootStageP50Ms: percentile(root, 50),
        dependentStageP50Ms: percentile(dependent, 50),
        resolutionMs: 1,
      },
    };
  } finally {
    await agent.stop();
    rmSync(platform.dir, { recursive: true, force: true });
  }
}

/**
 * What one fsync costs on the file system the agent's data directory is on (the test platform's, under
 * the system's temporary folder): a "durable" rate means nothing where a sync costs nothing (tmpfs).
 */
function syncCost(dir: string): { fileSystem: string; mountPoint: string; fsyncP50Ms: number; fsyncP99Ms: number; durable: boolean } {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const costs: number[] = [];
  const block = Buffer.alloc(4096, 1);
  try {
    for (let i = 0; i < 200; i++) {
      writeSync(fd, block, 0, block.length, (i % 16) * 4096);
      const t0 = performance.now();
      fsyncSync(fd);
      costs.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  let best = { mountPoint: "/", fileSystem: "unknown" };
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, mountPoint, fileSystem] = line.split(" ");
    if (mountPoint && fileSystem && (dir === mountPoint || dir.startsWith(mountPoint.endsWith("/") ? mountPoint : `${mountPoint}/`)) && mountPoint.length >= best.mountPoint.length) {
      best = { mountPoint, fileSystem };
    }
  }
  return {
    ...best,
    fsyncP50Ms: round(percentile(costs, 50), 3),
    fsyncP99Ms: round(percentile(costs, 99), 3),
    // A memory file system syncs nothing: its figures are not durable ones.
    durable: !["tmpfs", "ramfs"].includes(best.fileSystem),
  };
}

const storage = syncCost(join(tmpdir(), "gpufabric-bench-fsync"));
note(`data directory's file system: ${storage.fileSystem} at ${storage.mountPoint}, fsync p50 ${storage.fsyncP50Ms} ms${storage.durable ? "" : " (memory: not durable)"}`);
const submitted = [await submissions("full"), await submissions("normal")];
const dispatched = await dispatch();
const targets = (s: (typeof submitted)[number]) => ({
  runsPerSecond: {
    target: ">= 1000, none refused, on a file system that syncs",
    value: s.closedLoop.runsPerSecond,
    met: s.closedLoop.runsPerSecond >= 1000 && s.closedLoop.failures === 0 && (s.durability !== "full" || storage.durable),
  },
  submitP99MsAtRate: { target: `< 50 at ${rate}/s`, value: s.openLoop.p99Ms, met: s.openLoop.p99Ms < 50 && s.openLoop.achievedPerSecond >= rate * 0.95 },
  rssMiBWithQueuedRuns: { target: "< 300 with 10000 queued", value: s.memory.rssMiB, met: s.memory.rssMiB < 300 && s.memory.queuedRuns >= 10_000 },
});
const result = {
  bench: "agent",
  machine: { cpus: cpus().length, node: process.version },
  storage,
  submissions: submitted,
  ...dispatched,
  targets: {
    ...Object.fromEntries(submitted.map((s) => [s.durability, targets(s)])),
    dispatchP50Ms: { target: "< 20", value: dispatched.dispatch.p50Ms, met: dispatched.dispatch.p50Ms < 20 },
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
