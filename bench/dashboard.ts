/**
 * The dashboard's speed in headless Chromium (Debian's, through playwright-core) against the real agent
 * process, with targets:
 *  - runs page interactive with `--runs` (10,000) runs in the store: from navigation (a fresh browser
 *    context: cold cache, session cookie only) until the first page of rows is rendered and the status
 *    filter has answered (every row shown is of the chosen status) — target < 1.5 s;
 *  - a run of 200 stages (a generated layered DAG, every stage succeeded on one of two GPUs) rendered:
 *    navigation until the DAG has its 200 nodes and the timeline its 200 bars — target < 1 s;
 *  - live update latency: a running run is cancelled through the API; time from sending the cancel until
 *    the runs list row and the run page's status show `cancelled` (an upper bound: the change is committed
 *    during the request) — target < 300 ms.
 * The stored runs are written straight into the agent's store before it starts (not through the
 * scheduler), finished so the agent has nothing to schedule. Each figure is the median of `--reps`.
 * Prints JSON.
 *
 *   npm run bench:dashboard -- --json [--runs 10000] [--reps 5]
 */
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { openSqliteStore, type NewRun, type NewStage, type Store } from "../runtime/agent/store/index.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess } from "../test/agent/service/harness.ts";
import { closeBrowser, ensureUiBuilt, launchBrowser, logIn, newContext } from "../test/support/browser.ts";
import { intArg, round } from "./support.ts";

const runs = intArg("runs", "10000");
const reps = intArg("reps", "5");
const json = process.argv.includes("--json");
const note = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`);
};
const TENANT = "studio";
const GPUS = ["bench-g0", "bench-g1"];
const BIG_STAGES = 200;
const TARGETS = { runsPageInteractiveMs: 1500, bigRunRenderMs: 1000, liveUpdateMs: 300 };

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function stage(id: string, needs: string[]): NewStage {
  return { id, needs, resources: { gpus: 1, vramMiB: 4096 }, estimate: { durationS: 5, modelLoadS: 1 } };
}

function storedRun(workflow: string, stages: NewStage[], i: number): NewRun {
  return {
    tenant: TENANT,
    workflow,
    format: "native",
    priority: i % 3 === 0 ? "interactive" : "batch",
    submittedBy: "tester",
    document: { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: workflow } },
    inputs: {},
    stages,
  };
}

/** 20 layers of 10: each stage needs one or two stages of the layer before (a deterministic spread). */
export function layeredDag(total: number, width = 10): NewStage[] {
  const stages: NewStage[] = [];
  for (let i = 0; i < total; i++) {
    const layer = Math.floor(i / width);
    const col = i % width;
    const prev = (c: number) => `s${(layer - 1) * width + (((c % width) + width) % width)}`;
    stages.push(stage(`s${i}`, layer === 0 ? [] : [...new Set([prev(col), prev(col * 3 + 1)])]));
  }
  return stages;
}

/** Drives every ready stage of the store through placed → running → sealing → succeeded (or failed). */
async function finishReady(store: Store, fail: (runId: string) => boolean): Promise<void> {
  let turn = 0;
  for (let ready = await store.readyStages(1000); ready.length > 0; ready = await store.readyStages(1000)) {
    for (const r of ready) {
      const gpu = GPUS[turn++ % GPUS.length]!;
      const a = await store.markPlaced({ runId: r.runId, stageId: r.stage.stageId, gpus: [gpu], explanation: { bench: true } });
      await store.markRunning(a.id, { pid: null, workspace: null });
      if (fail(r.runId)) {
        await store.markFailed(a.id, { reason: "exit code 1", retry: false, exitCode: 1, simulated: true });
        continue;
      }
      await store.markSealing(a.id, { exitCode: 0, simulated: true });
      await store.markSucceeded(a.id, { exitCode: 0, peakVramMiB: 2048, simulated: true, artifacts: [] });
    }
  }
}

/** Writes `count` one-stage runs (a quarter succeeded, a quarter failed, half cancelled) and the 200-stage run. */
export async function fillStore(dataDir: string, count: number): Promise<{ bigRunId: string; seconds: number }> {
  const started = performance.now();
  const store = openSqliteStore(join(dataDir, "agent.db"), { durability: "normal" });
  try {
    const failing = new Set<string>();
    const toCancel: string[] = [];
    for (let i = 0; i < count; i++) {
      const { run } = await store.createRun(storedRun(`workflow-${i % 7}`, [stage("render", [])], i));
      if (i % 4 === 1) failing.add(run.id);
      else if (i % 4 >= 2) toCancel.push(run.id);
    }
    for (const id of toCancel) await store.cancelRun(TENANT, id);
    await finishReady(store, (id) => failing.has(id));
    const { run: big } = await store.createRun(storedRun("layered-200", layeredDag(BIG_STAGES), count));
    await finishReady(store, () => false);
    return { bigRunId: big.id, seconds: (performance.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}

/** A page in a fresh context (cold cache) that carries only the session cookie. */
async function freshPage(browser: Browser, state: Awaited<ReturnType<BrowserContext["storageState"]>>): Promise<Page> {
  const context = await browser.newContext({ storageState: state, viewport: { width: 1440, height: 900 } });
  return context.newPage();
}

async function runsPageInteractive(browser: Browser, url: string, state: Parameters<typeof freshPage>[1], firstRows: number[] = []): Promise<number> {
  const page = await freshPage(browser, state);
  try {
    const t0 = performance.now();
    await page.goto(`${url}/ui/#/runs`);
    await page.locator("[data-testid=run-row]").first().waitFor({ timeout: 30_000 });
    firstRows.push(performance.now() - t0);
    await page.locator("select[name=status]").selectOption("failed");
    await page.waitForFunction(
      () => {
        const rows = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ getAttribute(n: string): string | null }> } }).document.querySelectorAll(
          "[data-testid=run-row]"
        );
        return rows.length > 0 && Array.from(rows).every((r) => r.getAttribute("data-status") === "failed");
      },
      undefined,
      { polling: "raf", timeout: 30_000 }
    );
    return performance.now() - t0;
  } finally {
    await page.context().close();
  }
}

async function bigRunRender(browser: Browser, url: string, state: Parameters<typeof freshPage>[1], runId: string): Promise<number> {
  const page = await freshPage(browser, state);
  try {
    const t0 = performance.now();
    await page.goto(`${url}/ui/#/runs/${runId}`);
    await page.waitForFunction(
      (n) => {
        const doc = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<unknown> } }).document;
        return doc.querySelectorAll("svg[data-testid=dag] [data-testid=dag-node]").length === n && doc.querySelectorAll("[data-testid=timeline] [data-testid=timeline-bar]").length === n;
      },
      BIG_STAGES,
      { polling: "raf", timeout: 30_000 }
    );
    return performance.now() - t0;
  } finally {
    await page.context().close();
  }
}

/** Resolves in the page with the epoch ms at which `selector` first matches (a MutationObserver on attributes and children). */
async function watchFor(page: Page, selector: string): Promise<void> {
  // A string, not a function: tsx's transform would wrap the named closures in a helper the page lacks.
  await page.evaluate(`(() => {
    const sel = ${JSON.stringify(selector)};
    window.__seenAt = undefined;
    const check = () => {
      if (window.__seenAt === undefined && document.querySelector(sel)) window.__seenAt = Date.now();
    };
    const observer = new MutationObserver(() => {
      check();
      if (window.__seenAt !== undefined) observer.disconnect();
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true });
    check();
  })()`);
}

const seenAt = (page: Page) => page.waitForFunction(() => (globalThis as unknown as { __seenAt?: number }).__seenAt, undefined, { timeout: 10_000 }).then((h) => h.jsonValue() as Promise<number>);

async function liveUpdate(browser: Browser, agent: AgentProcess, token: string, state: Parameters<typeof freshPage>[1]) {
  const api = client(agent.url, token);
  const answer = await api.post("/v1/runs", { workflow: sleepyWorkflow("live", [{ id: "hold", ms: 120_000 }]) });
  if (answer.status !== 202) throw new Error(`submitting the live run: ${answer.status} ${JSON.stringify(answer.body)}`);
  const id = answer.body.id as string;
  const list = await freshPage(browser, state);
  const runPage = await list.context().newPage();
  try {
    await list.goto(`${agent.url}/ui/#/runs`);
    await runPage.goto(`${agent.url}/ui/#/runs/${id}`);
    await list.locator(`[data-testid=run-row][data-run-id="${id}"][data-status=running]`).waitFor({ timeout: 30_000 });
    await runPage.locator("[data-testid=run-status][data-status=running]").waitFor({ timeout: 30_000 });
    await watchFor(list, `[data-testid=run-row][data-run-id="${id}"][data-status=cancelled]`);
    await watchFor(runPage, "[data-testid=run-status][data-status=cancelled]");
    const sent = Date.now();
    const cancelled = await api.post(`/v1/runs/${id}/cancel`);
    const answered = Date.now();
    if (cancelled.status !== 202) throw new Error(`cancelling the live run: ${cancelled.status}`);
    const [inList, inRunPage] = await Promise.all([seenAt(list), seenAt(runPage)]);
    return { listMs: inList - sent, runPageMs: inRunPage - sent, cancelRequestMs: answered - sent };
  } finally {
    await list.context().close();
    await api.waitForRun(id, ["cancelled"], 30_000).catch(() => undefined);
  }
}

async function main() {
  // The machine as the bench found it: the figures are wall-clock times, which a busy machine stretches.
  const loadAtStart = loadavg().map((v) => round(v, 2));
  await ensureUiBuilt();
  const platform = createPlatform({ devices: GPUS.map((id) => ({ id, node: "n0", memoryMiB: 24_576 })) });
  let agent: AgentProcess | undefined;
  let browser: Browser | undefined;
  try {
    note(`writing ${runs} runs and a ${BIG_STAGES}-stage run into the store…`);
    const filled = await fillStore(platform.dataDir, runs);
    [agent, browser] = await Promise.all([startAgentProcess(platform), launchBrowser()]);
    const token = platform.tokens[TENANT]!;
    const login = await newContext(browser);
    const loginPage = await login.newPage();
    await logIn(loginPage, agent.url, token);
    const state = await login.storageState();
    await login.close();
    // One unmeasured pass of each, so that the agent's code paths are compiled before they are timed.
    await runsPageInteractive(browser, agent.url, state);
    await bigRunRender(browser, agent.url, state, filled.bigRunId);
    const interactive: number[] = [];
    const firstRows: number[] = [];
    const big: number[] = [];
    const live: Array<{ listMs: number; runPageMs: number; cancelRequestMs: number }> = [];
    for (let i = 0; i < reps; i++) {
      note(`repetition ${i + 1}/${reps}`);
      interactive.push(await runsPageInteractive(browser, agent.url, state, firstRows));
      big.push(await bigRunRender(browser, agent.url, state, filled.bigRunId));
      live.push(await liveUpdate(browser, agent, token, state));
    }
    const api = client(agent.url, token);
    // Where the page's time goes: the API answers it waits on, timed from here (same machine, no browser).
    const timed = async (path: string) => {
      const samples: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        const answer = await api.get(path);
        if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status}`);
        samples.push(performance.now() - t0);
      }
      return round(median(samples));
    };
    const apiMedianMs = { runsFirstPage: await timed("/v1/runs?limit=50"), runsFailedFirstPage: await timed("/v1/runs?status=failed&limit=50"), bigRunView: await timed(`/v1/runs/${filled.bigRunId}`) };
    await waitFor("no run left running", async () => (await api.get("/v1/runs?status=running")).body.runs?.length === 0, 30_000);
    const figures = {
      runsPageInteractiveMs: round(median(interactive)),
      bigRunRenderMs: round(median(big)),
      liveUpdateMs: round(Math.max(median(live.map((l) => l.listMs)), median(live.map((l) => l.runPageMs)))),
    };
    const result = {
      bench: "dashboard",
      // The load average says how much else the machine was doing: the figures are wall-clock times.
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, chromium: browser.version(), loadAverageAtStart: { "1m": loadAtStart[0], "5m": loadAtStart[1], "15m": loadAtStart[2] }, loadAverage1m: round(loadavg()[0]!, 2) },
      storedRuns: runs,
      bigRunStages: BIG_STAGES,
      storeFillSeconds: round(filled.seconds, 2),
      repetitions: reps,
      apiMedianMs,
      runsPage: { medianMs: figures.runsPageInteractiveMs, firstRowMedianMs: round(median(firstRows)), samplesMs: interactive.map((v) => round(v)), targetMs: TARGETS.runsPageInteractiveMs, met: figures.runsPageInteractiveMs < TARGETS.runsPageInteractiveMs },
      bigRun: { medianMs: figures.bigRunRenderMs, samplesMs: big.map((v) => round(v)), targetMs: TARGETS.bigRunRenderMs, met: figures.bigRunRenderMs < TARGETS.bigRunRenderMs },
      liveUpdate: {
        medianMs: figures.liveUpdateMs,
        listMedianMs: median(live.map((l) => l.listMs)),
        runPageMedianMs: median(live.map((l) => l.runPageMs)),
        cancelRequestMedianMs: median(live.map((l) => l.cancelRequestMs)),
        samples: live,
        targetMs: TARGETS.liveUpdateMs,
        met: figures.liveUpdateMs < TARGETS.liveUpdateMs,
      },
    };
    process.stdout.write(`${JSON.stringify(result, null, json ? 0 : 2)}\n`);
  } finally {
    await closeBrowser(browser);
    await agent?.stop();
    removePlatform(platform);
  }
}

// Imported (its store filling is reused) it measures nothing.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
