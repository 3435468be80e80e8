/**
 * The embedded store's speed: durable run submissions (a 4-stage run each: createRun, committed before
 * it returns) from `--concurrency` submitters at once (as concurrent API requests would be; 1 is one
 * after another) and stage transitions (placed, running, sealing, succeeded), under synchronous=FULL
 * and NORMAL. Prints JSON.
 *
 * `--store pg` (or `both`) measures the PostgreSQL store too: against `--database URL`, or else a throwaway
 * server started from the system's PostgreSQL binaries for the run (its fsync off, as in the tests: the
 * figure is the store's and the protocol's cost, not the disk's). Its commits are synchronous whatever
 * `--durability` says, so it is measured once per concurrency.
 *
 *   npm run bench:store -- --json [--runs 5000] [--concurrency 1,16,64] [--durability full|normal|both] [--store sqlite|pg|both] [--database URL]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openPgStore, openSqliteStore, type Durability, type NewRun, type Store } from "../runtime/agent/store/index.ts";
import { dropSchema, startTestPostgres, uniqueSchema } from "../test/support/postgres.ts";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1] ?? "";
}

const runs = Number(arg("runs", "5000"));
const durabilityArg = arg("durability", "both");
const concurrencies = arg("concurrency", "1,16,64").split(",").map(Number);
if (concurrencies.some((c) => !Number.isInteger(c) || c < 1)) {
  process.stderr.write("--concurrency must be a comma-separated list of positive integers, e.g. 1,64\n");
  process.exit(2);
}
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write("--runs must be a positive integer\n");
  process.exit(2);
}
const storeArg = arg("store", "sqlite");
if (!["sqlite", "pg", "both"].includes(storeArg)) {
  process.stderr.write("--store must be sqlite, pg or both\n");
  process.exit(2);
}
if (!["full", "normal", "both"].includes(durabilityArg)) {
  process.stderr.write("--durability must be full, normal or both\n");
  process.exit(2);
}

function run(i: number): NewRun {
  const stage = (id: string, needs: string[]) => ({ id, needs, resources: { gpus: 1, vramMiB: 8192 }, estimate: { durationS: 10, modelLoadS: 2 } });
  return {
    tenant: i % 3 === 0 ? "research" : "studio",
    workflow: "upscale",
    format: "native",
    priority: i % 5 === 0 ? "interactive" : "batch",
    idempotencyKey: `bench-${i}`,
    document: { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "upscale" } },
    inputs: { seed: i },
    stages: [stage("generate", []), stage("upscale-a", ["generate"]), stage("upscale-b", ["generate"]), stage("sheet", ["upscale-a", "upscale-b"])],
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Target {
  readonly store: "sqlite" | "pg";
  readonly durability: Durability | "synchronous_commit";
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

function sqliteTarget(durability: Durability): Target {
  return {
    store: "sqlite",
    durability,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), "gpufabric-bench-store-"));
      return { store: openSqliteStore(join(dir, "agent.db"), { durability }), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  };
}

function pgTarget(url: string): Target {
  return {
    store: "pg",
    durability: "synchronous_commit",
    async open() {
      const schema = uniqueSchema("bench");
      // As many connections as the agent's default pool.
      return { store: await openPgStore(url, { schema, maxConnections: 10 }), cleanup: () => dropSchema(url, schema) };
    },
  };
}

async function measure(target: Target, concurrency: number) {
  const { store, cleanup } = await target.open();
  try {
    const latencies: number[] = [];
    let next = 0;
    const submitter = async () => {
      for (let i = next++; i < runs; i = next++) {
        const t = performance.now();
        await store.createRun(run(i));
        latencies.push(performance.now() - t);
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, submitter));
    const submitS = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);

    // Drive a slice of the runs through every stage transition.
    const transitionRuns = Math.min(runs, 1000);
    let transitions = 0;
    const t0 = performance.now();
    for (
      let ready = await store.readyStages(transitionRuns);
      ready.length > 0 && transitions < transitionRuns * 16;
      ready = await store.readyStages(transitionRuns)
    ) {
      for (const r of ready) {
        const a = await store.markPlaced({ runId: r.runId, stageId: r.stage.stageId, gpus: ["gpu-0"], explanation: { bench: true } });
        await store.markRunning(a.id, { pid: 1, workspace: "/ws" });
        await store.markSealing(a.id, { exitCode: 0 });
        await store.markSucceeded(a.id, { exitCode: 0, artifacts: [{ name: "out.png", bytes: 1, sha256: "0".repeat(64), path: "/a/out.png" }] });
        transitions += 4;
      }
    }
    const transitionS = (performance.now() - t0) / 1000;
    return {
      store: target.store,
      durability: target.durability,
      concurrency,
      runs,
      stagesPerRun: 4,
      submitsPerSecond: Math.round(runs / submitS),
      submitP50Ms: Number(percentile(latencies, 50).toFixed(3)),
      submitP99Ms: Number(percentile(latencies, 99).toFixed(3)),
      submitMaxMs: Number(latencies[latencies.length - 1]!.toFixed(3)),
      transitions,
      transitionsPerSecond: Math.round(transitions / transitionS),
      rssMiB: Math.round(process.memoryUsage().rss / (1024 * 1024)),
    };
  } finally {
    await store.close();
    await cleanup();
  }
}

const modes: Durability[] = durabilityArg === "both" ? ["full", "normal"] : [durabilityArg as Durability];
const targets: Target[] = storeArg === "pg" ? [] : modes.map(sqliteTarget);
let stopServer: (() => Promise<void>) | undefined;
let pgNote: string | undefined;
if (storeArg !== "sqlite") {
  const database = arg("database", "");
  if (database !== "") targets.push(pgTarget(database));
  else {
    const server = await startTestPostgres();
    if ("skip" in server) pgNote = `PostgreSQL not measured: ${server.skip}`;
    else {
      stopServer = () => server.stop();
      targets.push(pgTarget(server.url));
    }
  }
}
const results = [];
try {
  for (const target of targets) for (const concurrency of concurrencies) results.push(await measure(target, concurrency));
} finally {
  await stopServer?.();
}
if (pgNote) process.stderr.write(`${pgNote}\n`);
const described = { sqlite: "sqlite (WAL)", pg: "postgresql (synchronous_commit=on)", both: "sqlite (WAL) and postgresql (synchronous_commit=on)" };
const report = { bench: "store", store: described[storeArg as keyof typeof described], node: process.version, cpus: cpus().length, results };
if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else
  for (const r of results)
    process.stdout.write(
      `${r.store} ${r.durability}, ${r.concurrency} at once: ${r.submitsPerSecond} submits/s (p99 ${r.submitP99Ms} ms), ${r.transitionsPerSecond} transitions/s\n`
    );
