/**
 * Cluster mode on this machine, as `gpufabric dev --workers` runs it: a local PostgreSQL, two control
 * planes, three workers of eight simulated GPUs each, every one a real process. Beside it, in the same
 * run, the single-node agent on its embedded SQLite store, for the submission rate.
 *
 *  - submissions: `--runs` runs (a 2-stage workflow document each) from `--concurrency` clients, sent to
 *    both control planes in turn, after a third as many (at most 2,000) as warm-up; runs/s accepted (202:
 *    durable in PostgreSQL), with p99 latency; the same against the single-node agent, the two alternating
 *    for `--submit-rounds` rounds (the round of median rate is reported, every round's rate beside it);
 *  - dispatch: stage ready (its run accepted, or the stages it needs ended) → its process started on a
 *    worker (the attempt's start, recorded when the worker reports it), for root and dependent stages;
 *  - stages/s: `--stage-runs` runs of ten short stages (a shell process each, sandboxed, writing its
 *    output) over the 24 GPUs; and the same with simulated stages (no process: the control plane's and
 *    the workers' own cost per stage);
 *  - worker loss: a worker killed with SIGKILL under a running stage → that stage running on another node;
 *  - leader failover: the leader killed with SIGKILL → the next stage placed and started;
 *  - chaos: `--rounds` rounds, each submitting runs and killing a random worker or the leader with
 *    SIGKILL, then starting it again; at the end every accepted run must have ended (lost: unknown to
 *    the store; stuck: not ended), no stage may have two succeeded attempts or its outputs twice, and
 *    each control plane's audit log must verify against its signed checkpoints.
 * The load generator, the database and every process share this machine's cores. Prints JSON.
 *
 *   npm run bench:cluster -- --json [--runs 4000] [--concurrency 64] [--submit-rounds 3] [--dispatch-runs 60] [--stage-runs 30] [--rounds 30]
 */
import { spawnSync } from "node:child_process";
import { Agent } from "node:http";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { intArg, percentile, post, round } from "./support.ts";
import { loadPlatformConfig } from "../runtime/config/index.ts";
import { parseDatabase } from "../runtime/agent/store/open.ts";
import { LocalCluster } from "../runtime/agent/cluster/local-cluster.ts";
import { startLocalPostgres, type LocalPostgres } from "../runtime/agent/cluster/local-postgres.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, waitFor, REPO_ROOT, type TestPlatform } from "../test/agent/service/harness.ts";

const runs = intArg("runs", "4000");
const concurrency = intArg("concurrency", "64");
const dispatchRuns = intArg("dispatch-runs", "60");
const stageRuns = intArg("stage-runs", "30");
const rounds = intArg("rounds", "30");
const submitRounds = intArg("submit-rounds", "3");
const json = process.argv.includes("--json");
const note = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`);
};
const WORKER_LEASE_MS = 5000;
const LEADER_LEASE_MS = 3000;

const median = (values: readonly number[]) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** A 2-stage document whose stages hold their GPUs for ten minutes (simulated): accepted runs stay queued. */
const QUEUED = JSON.stringify({
  workflow: {
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: "queued" },
    spec: {
      stages: [
        { id: "render", resources: { gpus: 1, vram: "1Gi" }, estimate: { durationSeconds: 600 } },
        { id: "upscale", needs: ["render"], resources: { gpus: 1, vram: "1Gi" }, estimate: { durationSeconds: 600 } },
      ],
    },
  },
});

/** Closed loop: `total` submissions from `concurrency` clients over `urls` in turn. */
async function submit(urls: readonly string[], token: string, total: number): Promise<{ perSecond: number; p50Ms: number; p99Ms: number; failures: number }> {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const keepAlive = new Agent({ keepAlive: true, maxSockets: concurrency });
  // Warm-up (not timed), the same for both: the processes' code gets compiled before it is measured.
  const warmup = Math.min(2000, Math.ceil(total / 3));
  let warmed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (warmed++ < warmup) await post(`${urls[i % urls.length]}/v1/runs`, headers, QUEUED, keepAlive);
    })
  );
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const url = urls[next++ % urls.length]!;
        const t0 = performance.now();
        const status = await post(`${url}/v1/runs`, headers, QUEUED, keepAlive);
        latencies.push(performance.now() - t0);
        if (status !== 202) failures++;
      }
    })
  );
  const seconds = (performance.now() - started) / 1000;
  keepAlive.destroy();
  return { perSecond: Math.round((total - failures) / seconds), p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), failures };
}

async function singleNodeSubmissions() {
  const platform = createPlatform({ devices: [{ id: "bench-g0", node: "n0", memoryMiB: 24_576 }] });
  const agent = await startAgentProcess(platform);
  try {
    return await submit([agent.url], platform.tokens.studio!, runs);
  } finally {
    await agent.stop();
    removePlatform(platform);
  }
}

interface Phase {
  readonly platform: TestPlatform;
  readonly cluster: LocalCluster;
}

async function startPhase(server: LocalPostgres, name: string): Promise<Phase> {
  const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 81_920 }] });
  const cluster = await LocalCluster.start({
    config: loadPlatformConfig(platform.configFile),
    dataDir: platform.dataDir,
    workers: 3,
    controlPlanes: 2,
    gpusPerWorker: 8,
    database: `${server.url}&schema=bench_${name}`,
    workerLeaseMs: WORKER_LEASE_MS,
    leaderLeaseMs: LEADER_LEASE_MS,
  });
  return { platform, cluster };
}

async function stopPhase(p: Phase): Promise<void> {
  await p.cluster.stop();
  removePlatform(p.platform);
}

/** A connection to the cluster's store, with its schema first on the search path. */
async function storeClient(cluster: LocalCluster): Promise<pg.Client> {
  const where = parseDatabase(cluster.database, "/");
  if (where.kind !== "postgres") throw new Error("not a PostgreSQL store");
  const c = new pg.Client({ connectionString: where.url });
  await c.connect();
  await c.query(`SET search_path TO ${where.schema}`);
  return c;
}

async function leaderOf(cluster: LocalCluster, not?: string): Promise<string> {
  return waitFor("a leader", async () => {
    const name = (await cluster.leader())?.name;
    return name === not ? undefined : name;
  }, 60_000);
}

async function dispatch(p: Phase) {
  const root: number[] = [];
  const dependent: number[] = [];
  const urls = p.cluster.controlPlaneUrls;
  // The first five runs warm the processes up and are not counted.
  for (let i = -5; i < dispatchRuns; i++) {
    const api = client(urls[(i + 5) % urls.length]!, p.platform.tokens.studio!);
    const submitted = await api.post("/v1/runs", { workflow: sleepyWorkflow("dispatch", [{ id: "first", ms: 1 }, { id: "second", needs: ["first"], ms: 1 }]) });
    const run = await api.waitForRun(submitted.body.id);
    if (run.status !== "succeeded") throw new Error(`dispatch run ${run.id} ${run.status}`);
    const [first, second] = run.stages as Array<{ startedAt: string; finishedAt: string }>;
    if (i < 0) continue;
    root.push(Date.parse(first!.startedAt) - Date.parse(run.createdAt));
    dependent.push(Date.parse(second!.startedAt) - Date.parse(first!.finishedAt));
  }
  const all = [...root, ...dependent];
  return { samples: all.length, p50Ms: round(percentile(all, 50)), p99Ms: round(percentile(all, 99)), rootP50Ms: round(percentile(root, 50)), dependentP50Ms: round(percentile(dependent, 50)) };
}

/** Ten stages side by side, each a short process (a shell writing its output), or simulated (no process). */
function wideWorkflow(simulated: boolean): Record<string, unknown> {
  return {
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: simulated ? "wide-simulated" : "wide" },
    spec: {
      stages: Array.from({ length: 10 }, (_, i) => ({
        id: `s${i}`,
        resources: { gpus: 1, vram: "1Gi" },
        ...(!simulated && { run: { command: ["/bin/sh", "-c", `echo s${i} > "$GPUFABRIC_OUTPUT_DIR/s${i}.txt"`], timeoutSeconds: 60 } }),
        estimate: { durationSeconds: 0.01 },
      })),
    },
  };
}

async function stagesPerSecond(p: Phase, simulated: boolean) {
  const api = client(p.cluster.url, p.platform.tokens.studio!);
  const wide = wideWorkflow(simulated);
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < stageRuns; i++) ids.push((await api.post("/v1/runs", { workflow: wide })).body.id);
  let failed = 0;
  const nodes = new Set<string>();
  for (const id of ids) {
    const run = await api.waitForRun(id, ["succeeded", "failed", "cancelled"], 600_000);
    if (run.status !== "succeeded") failed++;
    for (const s of run.stages) nodes.add(s.node);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { stages: stageRuns * 10, seconds: round(seconds, 2), perSecond: round((stageRuns * 10) / seconds), failedRuns: failed, nodes: nodes.size };
}

async function workerLoss(p: Phase) {
  const api = client(p.cluster.url, p.platform.tokens.studio!);
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const submitted = await api.post("/v1/runs", { workflow: sleepyWorkflow(`held-${i}`, [{ id: "long", ms: 30_000 }]) });
    const node = await waitFor("the stage running", async () => {
      const s = (await api.get(`/v1/runs/${submitted.body.id}`)).body.stages[0];
      return s.status === "running" && s.node ? (s.node as string) : undefined;
    });
    const victim = p.cluster.processes.find((x) => x.role === "worker" && x.node === node)!;
    const t0 = performance.now();
    p.cluster.signal(victim.name, "SIGKILL");
    await waitFor(
      "the stage running elsewhere",
      async () => {
        const s = (await api.get(`/v1/runs/${submitted.body.id}`)).body.stages[0];
        return s.attempts >= 2 && s.status === "running" && s.node !== node;
      },
      60_000
    );
    samples.push((performance.now() - t0) / 1000);
    await api.post(`/v1/runs/${submitted.body.id}/cancel`);
    await p.cluster.restart(victim.name);
  }
  return { samples: samples.map((s) => round(s, 2)), medianS: round(median(samples), 2), leaseS: WORKER_LEASE_MS / 1000 };
}

async function leaderFailover(p: Phase) {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = await leaderOf(p.cluster);
    const survivor = p.cluster.processes.find((x) => x.role === "control-plane" && x.name !== before)!;
    const api = client(survivor.url!, p.platform.tokens.studio!);
    const t0 = Date.now();
    p.cluster.signal(before, "SIGKILL");
    const submitted = await api.post("/v1/runs", { workflow: sleepyWorkflow(`after-${i}`, [{ id: "next", ms: 1 }]) });
    const run = await api.waitForRun(submitted.body.id, ["succeeded", "failed", "cancelled"], 60_000);
    samples.push((Date.parse(run.stages[0].startedAt) - t0) / 1000);
    await p.cluster.restart(before);
    await sleep(1000);
  }
  return { samples: samples.map((s) => round(s, 2)), medianS: round(median(samples), 2), leaseS: LEADER_LEASE_MS / 1000 };
}

async function chaos(p: Phase) {
  const accepted: string[] = [];
  let refused = 0;
  const relay = (name: string) =>
    sleepyWorkflow(name, [
      { id: "a", ms: 200 },
      { id: "b", needs: ["a"], ms: 200 },
      { id: "c", needs: ["a"], ms: 200 },
      { id: "d", needs: ["b", "c"], ms: 200 },
    ]);
  const kills = { worker: 0, leader: 0 };
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 3; i++) {
      const url = p.cluster.controlPlaneUrls[(r + i) % 2]!;
      const res = await client(url, p.platform.tokens.studio!)
        .post("/v1/runs", { workflow: relay(`chaos-${r}-${i}`) })
        .catch(() => ({ status: 0, body: {} as { id?: string } }));
      if (res.status === 202) accepted.push(res.body.id);
      else refused++;
    }
    const killLeader = r % 3 === 2;
    const victim = killLeader ? await leaderOf(p.cluster) : `worker-${Math.floor(Math.random() * 3)}`;
    kills[killLeader ? "leader" : "worker"]++;
    p.cluster.signal(victim, "SIGKILL");
    await sleep(1500);
    await p.cluster.restart(victim);
    note(`chaos round ${r + 1}/${rounds}: killed ${victim}`);
  }
  const deadline = Date.now() + 300_000;
  const api = () => client(p.cluster.url, p.platform.tokens.studio!);
  const status = new Map<string, string>();
  for (const id of accepted) {
    for (;;) {
      const res = await api()
        .get(`/v1/runs/${id}`)
        .catch(() => ({ status: 0, body: {} as { status?: string } }));
      if (res.status === 404) {
        status.set(id, "lost");
        break;
      }
      if (res.status === 200 && ["succeeded", "failed", "cancelled"].includes(res.body.status)) {
        status.set(id, res.body.status);
        break;
      }
      if (Date.now() > deadline) {
        status.set(id, "stuck");
        break;
      }
      await sleep(200);
    }
  }
  const c = await storeClient(p.cluster);
  const twice = await c.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT run_id, stage_id FROM attempts WHERE status = 'succeeded' GROUP BY run_id, stage_id HAVING count(*) > 1) x`
  );
  const twiceArtifacts = await c.query<{ n: string }>(`SELECT count(*) AS n FROM (SELECT run_id, stage_id, name FROM artifacts GROUP BY run_id, stage_id, name HAVING count(*) > 1) x`);
  await c.end();
  await p.cluster.stop();
  // Each control plane's chain against its own checkpoints, signed with the platform's key.
  const audits = p.cluster.processes
    .filter((x) => x.role === "control-plane")
    .map((x) => {
      const verify = spawnSync(
        process.execPath,
        [join(REPO_ROOT, "bin/gpufabric.mjs"), "audit", "verify", "--data-dir", join(p.platform.dataDir, x.name), "--checkpoints", join(p.platform.sinkDir, x.name), "--public-key", p.platform.publicKeyPath, "--json"],
        { encoding: "utf8" }
      );
      return verify.status === 0;
    });
  const count = (s: string) => [...status.values()].filter((v) => v === s).length;
  return {
    rounds,
    kills,
    runs_accepted: accepted.length,
    runs_refused: refused,
    runs_succeeded: count("succeeded"),
    runs_failed: count("failed"),
    runs_lost: count("lost"),
    runs_stuck: count("stuck"),
    outputs_committed_twice: Number(twice.rows[0]!.n) + Number(twiceArtifacts.rows[0]!.n),
    audit_verifies: audits.every(Boolean),
  };
}

async function main() {
  const server = await startLocalPostgres();
  if ("unavailable" in server) throw new Error(server.unavailable);
  const results: Record<string, unknown> = {};
  try {
    // Alternating, side by side: the machine's own noise falls on both alike, and medians are reported.
    const singles: Array<Awaited<ReturnType<typeof submit>>> = [];
    const clustereds: Array<Awaited<ReturnType<typeof submit>>> = [];
    let p: Phase;
    for (let r = 0; r < submitRounds; r++) {
      note(`round ${r + 1}: single node (SQLite) submissions …`);
      singles.push(await singleNodeSubmissions());
      p = await startPhase(server, `submit_${r}`);
      note(`round ${r + 1}: cluster submissions …`);
      clustereds.push(await submit(p.cluster.controlPlaneUrls, p.platform.tokens.studio!, runs));
      await stopPhase(p);
      note(`round ${r + 1}: single ${singles[r]!.perSecond}/s, cluster ${clustereds[r]!.perSecond}/s`);
    }
    const middle = <T extends { perSecond: number }>(list: T[]): T => [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!;
    const single = middle(singles);
    const clustered = middle(clustereds);

    p = await startPhase(server, "work");
    note("cluster: dispatch …");
    const d = await dispatch(p);
    note("cluster: stages/s …");
    const s = await stagesPerSecond(p, false);
    const sim = await stagesPerSecond(p, true);
    note("cluster: worker loss …");
    const w = await workerLoss(p);
    note("cluster: leader failover …");
    const l = await leaderFailover(p);
    await stopPhase(p);

    p = await startPhase(server, "chaos");
    note("cluster: chaos …");
    const c = await chaos(p);
    removePlatform(p.platform);

    Object.assign(results, {
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
      setup: { controlPlanes: 2, workers: 3, gpusPerWorker: 8, workerLeaseMs: WORKER_LEASE_MS, leaderLeaseMs: LEADER_LEASE_MS, runs, concurrency },
      submissions_per_s: clustered.perSecond,
      submissions_per_s_rounds: clustereds.map((x) => x.perSecond),
      single_node_submissions_per_s_rounds: singles.map((x) => x.perSecond),
      single_node_submissions_per_s: single.perSecond,
      submit_p50_ms: clustered.p50Ms,
      submit_p99_ms: clustered.p99Ms,
      single_node_submit_p99_ms: single.p99Ms,
      submit_failures: clustered.failures,
      dispatch_p50_ms: d.p50Ms,
      dispatch_p99_ms: d.p99Ms,
      dispatch: d,
      stages_per_s: s.perSecond,
      stages: s,
      simulated_stages_per_s: sim.perSecond,
      simulated_stages: sim,
      worker_loss_recovery_s: w.medianS,
      worker_loss: w,
      leader_failover_s: l.medianS,
      leader_failover: l,
      chaos: c,
      targets: {
        submissions_per_s: clustered.perSecond >= 1000,
        dispatch_p50_ms: d.p50Ms < 50,
        dispatch_p99_ms: d.p99Ms < 250,
        worker_loss_recovery_s: w.medianS <= WORKER_LEASE_MS / 1000 + 2,
        leader_failover_s: l.medianS < 10,
        chaos: c.runs_lost === 0 && c.runs_stuck === 0 && c.outputs_committed_twice === 0 && c.audit_verifies,
      },
    });
  } finally {
    await server.stop();
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

await main();
