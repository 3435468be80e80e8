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
 *  - the cost of a durable write on the data directory's own file system (write+fsync of a small file,
 *    200 times: median and p99) and its type (statfs and /proc/mounts), beside the durable rates: a rate
 *    measured on a memory file system (tmpfs) is not called durable (a field and a note on stderr);
 *  - only accepted (202) runs count toward runs/s, and a target with any refused or failed request is missed.
 * The load generator shares the machine's cores with the agent. Prints JSON.
 *
 *   npm run bench:agent -- --json [--runs 10000] [--concurrency 64] [--rate 1000] [--seconds 5] [--dispatch-runs 100]
 */
import { readFileSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { probeStorage } from "./storage-probe.ts";
import { intArg, percentile, post as postOnce, round } from "./support.ts";
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



/** A POST whose connection failed (reset, refused) answers 0: a failed submission, counted as one, not a crashed bench. */
const post: typeof postOnce = (...args) => postOnce(...args).catch(() => 0);

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
    let openAccepted = 0;
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
          if (status === 202) openAccepted++;
          else openFailures++;
        })
      );
    }
    await Promise.all(pending);
    keepAlive.destroy();
    const openSeconds_ = (performance.now() - t0) / 1000;
    const achieved = total / openSeconds_;
    note(`${durability}: open loop at ${rate}/s: p99 ${percentile(open, 99).toFixed(1)} ms`);
    return {
      durability,
      openLoop: {
        rate,
        seconds: openSeconds,
        runs: total,
        achievedPerSecond: Math.round(achieved),
        // Only accepted runs: the rate the agent actually took in.
        acceptedPerSecond: Math.round(openAccepted / openSeconds_),
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
    // The data directory's own file system, measured once the agent is gone (nothing else writes there then).
    try {
      storage.push(probeStorage(platform.dataDir));
    } finally {
      rmSync(platform.dir, { recursive: true, force: true });
    }
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

const storage: ReturnType<typeof probeStorage>[] = [];
const submitted = [await submissions("full"), await submissions("normal")];
// Both runs' data directories are on the same file system (the system's temporary folder): the first speaks for both.
const dataStorage = storage[0]!;
note(`data directory's file system: ${dataStorage.fileSystem} at ${dataStorage.mountPoint}, write+fsync p50 ${dataStorage.fsyncP50Ms} ms, p99 ${dataStorage.fsyncP99Ms} ms`);
// Printed even with --json (on stderr): a rate from a memory file system must not be read as durable.
if (dataStorage.note !== null) process.stderr.write(`note: ${dataStorage.note}\n`);
const dispatched = await dispatch();
const targets = (s: (typeof submitted)[number]) => ({
  runsPerSecond: {
    target: ">= 1000, none refused, on a file system that syncs",
    value: s.closedLoop.runsPerSecond,
    durable: s.durability === "full" && dataStorage.durable,
    met: s.closedLoop.runsPerSecond >= 1000 && s.closedLoop.failures === 0 && (s.durability !== "full" || dataStorage.durable),
  },
  submitP99MsAtRate: {
    target: `< 50 at ${rate}/s, every request accepted`,
    value: s.openLoop.p99Ms,
    met: s.openLoop.p99Ms < 50 && s.openLoop.failures === 0 && s.openLoop.acceptedPerSecond >= rate * 0.95,
  },
  rssMiBWithQueuedRuns: { target: "< 300 with 10000 queued", value: s.memory.rssMiB, met: s.memory.rssMiB < 300 && s.memory.queuedRuns >= 10_000 },
});
const result = {
  bench: "agent",
  machine: { cpus: cpus().length, node: process.version },
  storage: dataStorage,
  submissions: submitted,
  ...dispatched,
  targets: {
    ...Object.fromEntries(submitted.map((s) => [s.durability, targets(s)])),
    dispatchP50Ms: { target: "< 20", value: dispatched.dispatch.p50Ms, met: dispatched.dispatch.p50Ms < 20 },
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
