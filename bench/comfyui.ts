/**
 * The ComfyUI-compatible API of the agent (a real process) over stand-in ComfyUI servers (ComfyUI
 * itself cannot run here; the stand-ins run in this process, test/support/comfyui-standin.ts):
 *
 *  - ws_clients: `--ws-clients` /ws clients of one tenant held open at once, each its own clientId;
 *    then `--ws-rounds` POST /prompt without client_id, whose `status` broadcast goes to every client.
 *    Fan-out latency: when each client receives the first `status` after the POST, minus when the
 *    POST was sent (so it includes the POST's own handling), over all clients × rounds;
 *  - prompt_to_execution_start: ComfyUI's txt2img example prompt POSTed straight to a stand-in (with
 *    a ws client of its own) → `execution_start` on that ws, against the same prompt through the agent
 *    (the stand-in attached as the server of its one GPU) → `execution_start` on the agent's /ws;
 *    the two alternate for `--rounds` rounds after a warm-up; `added` is agent − direct;
 *  - modes: every prompt of ../shared/data/comfyui on 8 stand-in GPUs, once all segmented and once
 *    all whole-graph (extra_data.gpufabric.mode), each phase on a fresh agent and fresh stand-ins, all
 *    prompts submitted at once in file order, 30% of them interactive (spread evenly) and the rest
 *    batch; makespan (first POST → last final `executing`) and interactive latency (POST → its final
 *    `executing`). Beside them, the simulator's figures for the same prompts (compareComfyModes).
 * The load generator, the stand-ins and the agent share this machine's cores. Prints JSON.
 *
 *   npm run bench:comfyui -- --json [--ws-clients 1000] [--ws-rounds 50] [--rounds 50] [--node-delay-ms 100]
 */
import { randomUUID } from "node:crypto";
import { Agent } from "node:http";
import { cpus, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import type WebSocket from "ws";
import { intArg, percentile, round } from "./support.ts";
import { loadPrompts, openWs, postJson, PromptFollower, standinInventory, until, type PromptFile } from "./comfyui-support.ts";
import { ComfyUiSchema, type ComfyUiMode } from "../runtime/config/schema.ts";
import { compareComfyModes, comfyPromptsFromDir } from "../runtime/sim/comfyui-modes.ts";
import { startComfyStandin, type ComfyStandin, type StandinOptions } from "../test/support/comfyui-standin.ts";
import { sharedDataDir } from "../test/support/shared.ts";
import { examplePrompt } from "../test/agent/comfyui-api/prompts.ts";
import { createPlatform, removePlatform, startAgentProcess, tenant, type AgentProcess, type TestPlatform } from "../test/agent/service/harness.ts";

const wsClients = intArg("ws-clients", "1000");
const wsRounds = intArg("ws-rounds", "50");
const rounds = intArg("rounds", "50");
const nodeDelayMs = intArg("node-delay-ms", "100");
const json = process.argv.includes("--json");
const note = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`);
};
const WARMUP = 5;
const INTERACTIVE_SHARE = 0.3;
const GPUS = 8;

interface Running {
  readonly platform: TestPlatform;
  readonly agent: AgentProcess;
  readonly standins: readonly ComfyStandin[];
  readonly token: string;
  readonly headers: Record<string, string>;
  readonly base: string;
  readonly wsBase: string;
}

/**
 * An agent of one tenant on `gpus` simulated GPUs (80 GiB each, as the simulator's H100s); with
 * `standin` options, one stand-in per GPU attached as its ComfyUI server, else ComfyUI stages are simulated.
 */
async function startAgent(gpus: number, standin: StandinOptions | undefined, mode: ComfyUiMode = "segmented", args: string[] = []): Promise<Running> {
  const standins = standin === undefined ? [] : await Promise.all(Array.from({ length: gpus }, () => startComfyStandin(standin)));
  const platform = createPlatform({
    devices: Array.from({ length: gpus }, (_, i) => ({ id: `gpu${i}`, node: "n0", memoryMiB: 81_920 })),
    tenants: [tenant("studio")],
    ...(standin !== undefined && {
      comfyui: ComfyUiSchema.parse({ mode, servers: standins.map((s, i) => ({ gpu: `gpu${i}`, url: s.url })), startTimeoutMs: 30_000 }),
    }),
  });
  const agent = await startAgentProcess(platform, args).catch(async (err: unknown) => {
    await Promise.all(standins.map((s) => s.close()));
    removePlatform(platform);
    throw err;
  });
  const token = platform.tokens.studio!;
  const base = `${agent.url}/comfyui`;
  const running: Running = { platform, agent, standins, token, headers: { authorization: `Bearer ${token}` }, base, wsBase: base.replace(/^http/, "ws") };
  // A failure from here on must not leave the agent process behind.
  if (standin !== undefined) await serversReady(running).catch(async (err: unknown) => {
    await stopAgent(running);
    throw err;
  });
  return running;
}

/** The agent reads its servers' /models and /object_info (so prompts are checked against them, not the core classes). */
async function serversReady(r: Running): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${r.base}/models`, { headers: r.headers }).catch(() => undefined);
    if (res?.status === 200 && Object.keys((await res.json()) as object).length > 0) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`the agent did not see its ComfyUI servers within 60 s:\n${r.agent.output().slice(-2000)}`);
}

async function stopAgent(r: Running): Promise<void> {
  await r.agent.stop();
  await Promise.all(r.standins.map((s) => s.close()));
  removePlatform(r.platform);
}

/** A: many /ws clients of one tenant, and the `status` each receives after a POST /prompt. */
async function wsFanout() {
  // ComfyUI stages simulated here: the fan-out is the API's own, whatever runs the prompt.
  const r = await startAgent(1, undefined, "segmented", ["--simulated-time-scale", "0.001"]);
  const statuses: number[][] = [];
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < wsClients; i += 100) {
      const batch = Array.from({ length: Math.min(100, wsClients - i) }, (_, k) => {
        const arrivals: number[] = [];
        statuses.push(arrivals);
        return openWs(`${r.wsBase}/ws?clientId=fanout-${i + k}`, r.headers, (m, at) => {
          if (m.type === "status") arrivals.push(at);
        });
      });
      sockets.push(...(await Promise.all(batch)));
    }
    await until(() => statuses.every((s) => s.length >= 1), 30_000);
    note(`ws: ${sockets.length} clients open`);
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
    const latencies: number[] = [];
    // Per round, to tell the parts apart: the POST's answer, the first client's status, and the spread
    // from the first client's to the last one's (the agent's sends and this process's reads of 1,000 sockets).
    const answered: number[] = [];
    const firsts: number[] = [];
    const spreads: number[] = [];
    let missed = 0;
    for (let round_ = -WARMUP; round_ < wsRounds; round_++) {
      const marks = statuses.map((s) => s.length);
      const t0 = performance.now();
      const res = await postJson(`${r.base}/prompt`, r.headers, { prompt: examplePrompt(round_ + 100) }, keepAlive);
      const answer = performance.now() - t0;
      if (res.status !== 200) throw new Error(`POST /prompt answered ${res.status}: ${JSON.stringify(res.body)}`);
      await until(() => statuses.every((s, i) => s.length > marks[i]!), 10_000);
      if (round_ >= 0 && statuses.some((s, i) => s.length > marks[i]!)) {
        const these: number[] = [];
        statuses.forEach((s, i) => {
          if (s.length > marks[i]!) these.push(s[marks[i]!]! - t0);
          else missed++;
        });
        latencies.push(...these);
        answered.push(answer);
        firsts.push(Math.min(...these));
        spreads.push(Math.max(...these) - Math.min(...these));
        note(`ws round ${round_}: answer ${round(answer)} first ${round(Math.min(...these))} p50 ${round(percentile(these, 50))} last ${round(Math.max(...these))}`);
      }
      // The prompt's end broadcasts status again: let it reach every client before the next round.
      await until(() => statuses.every((s, i) => s.length >= marks[i]! + 2), 10_000, 5);
    }
    keepAlive.destroy();
    const held = sockets.filter((s) => s.readyState === s.OPEN).length;
    return {
      clients: wsClients,
      held,
      rounds: wsRounds,
      samples: latencies.length,
      missed,
      fanout_p50_ms: round(percentile(latencies, 50)),
      fanout_p99_ms: round(percentile(latencies, 99)),
      fanout_max_ms: round(percentile(latencies, 100)),
      post_answered_p50_ms: round(percentile(answered, 50)),
      first_client_p50_ms: round(percentile(firsts, 50)),
      first_to_last_client_p50_ms: round(percentile(spreads, 50)),
    };
  } finally {
    for (const s of sockets) s.terminate();
    await stopAgent(r);
  }
}

/** One prompt to `execution_start` on the follower's socket, waiting for its final `executing` before the next. */
async function promptToStart(url: string, headers: Record<string, string>, clientId: string, follower: PromptFollower, keepAlive: Agent): Promise<{ start: number; answered: number }> {
  const id = randomUUID();
  const t0 = performance.now();
  const res = await postJson(url, headers, { prompt: examplePrompt(Math.floor(Math.random() * 1e9)), client_id: clientId, prompt_id: id }, keepAlive);
  const answered = performance.now() - t0;
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
  await follower.final(id, 60_000);
  if (follower.failed.has(id)) throw new Error(`prompt ${id} failed: ${follower.failed.get(id)}`);
  const started = follower.started.get(id);
  if (started === undefined) throw new Error(`prompt ${id} ended without execution_start`);
  return { start: started - t0, answered };
}

/** B: POST /prompt → execution_start straight to a stand-in, and through the agent to that stand-in. */
async function promptStart() {
  const r = await startAgent(1, { nodeDelayMs: 1, historyLagMs: 1 });
  const sockets: WebSocket[] = [];
  try {
    const standin = r.standins[0]!;
    const direct = { follower: new PromptFollower(), clientId: randomUUID(), keepAlive: new Agent({ keepAlive: true, maxSockets: 1 }), url: `${standin.url}/prompt`, headers: {} };
    const viaAgent = { follower: new PromptFollower(), clientId: randomUUID(), keepAlive: new Agent({ keepAlive: true, maxSockets: 1 }), url: `${r.base}/prompt`, headers: r.headers };
    sockets.push(await openWs(`${standin.url.replace(/^http/, "ws")}/ws?clientId=${direct.clientId}`, {}, direct.follower.onMessage));
    sockets.push(await openWs(`${r.wsBase}/ws?clientId=${viaAgent.clientId}`, r.headers, viaAgent.follower.onMessage));
    // The POST's own answer beside it: how much of the time is the request, how much the dispatch after it.
    const samples = { direct: [] as number[], agent: [] as number[], directAnswered: [] as number[], agentAnswered: [] as number[] };
    // Alternating, so that the machine's noise falls on both alike; the first rounds warm both up.
    for (let i = -WARMUP; i < rounds; i++) {
      const d = await promptToStart(direct.url, direct.headers, direct.clientId, direct.follower, direct.keepAlive);
      const a = await promptToStart(viaAgent.url, viaAgent.headers, viaAgent.clientId, viaAgent.follower, viaAgent.keepAlive);
      if (i < 0) continue;
      samples.direct.push(d.start);
      samples.agent.push(a.start);
      samples.directAnswered.push(d.answered);
      samples.agentAnswered.push(a.answered);
    }
    direct.keepAlive.destroy();
    viaAgent.keepAlive.destroy();
    const figures = (list: number[], answered: number[]) => ({ p50_ms: round(percentile(list, 50)), p99_ms: round(percentile(list, 99)), post_answered_p50_ms: round(percentile(answered, 50)) });
    const d = figures(samples.direct, samples.directAnswered);
    const a = figures(samples.agent, samples.agentAnswered);
    return { rounds, standin_node_delay_ms: 1, direct: d, agent: a, added_p50_ms: round(a.p50_ms - d.p50_ms), added_p99_ms: round(a.p99_ms - d.p99_ms) };
  } finally {
    for (const s of sockets) s.terminate();
    await stopAgent(r);
  }
}

/** Whether the prompt at this place of the order is interactive: `share` of them, spread evenly (as the simulator picks). */
const interactiveAt = (position: number) => Math.floor((position + 1) * INTERACTIVE_SHARE) > Math.floor(position * INTERACTIVE_SHARE);

/** Why the agent refused a prompt: ComfyUI's error message and the first node error's details. */
function refusal(body: any): string {
  const node = Object.entries((body?.node_errors ?? {}) as Record<string, { class_type?: string; errors?: Array<{ message?: string; details?: string }> }>)[0];
  const detail = node === undefined ? "" : ` (node ${node[0]}, ${node[1].class_type}: ${node[1].errors?.[0]?.message}: ${node[1].errors?.[0]?.details})`;
  return `${String(body?.error?.message ?? JSON.stringify(body))}${detail}`.slice(0, 300);
}

/** One phase of C: every prompt in `mode` on a fresh agent and fresh stand-ins; all submitted at once. */
async function modePhase(prompts: readonly PromptFile[], mode: ComfyUiMode, inventory: ReturnType<typeof standinInventory>) {
  const r = await startAgent(GPUS, { nodeDelayMs, historyLagMs: 5, objectInfo: inventory.objectInfo, models: inventory.models }, mode);
  const follower = new PromptFollower();
  const clientId = randomUUID();
  const ws = await openWs(`${r.wsBase}/ws?clientId=${clientId}`, r.headers, follower.onMessage);
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const accepted: Array<{ file: string; id: string; postedAt: number; interactive: boolean }> = [];
    const refused: Array<{ file: string; status: number; type: string; message: string }> = [];
    const first = performance.now();
    for (const [position, { file, prompt }] of prompts.entries()) {
      const interactive = interactiveAt(position);
      const postedAt = performance.now();
      const body = { prompt, client_id: clientId, extra_data: { gpufabric: { mode, priority: interactive ? "interactive" : "batch" } } };
      const res = await postJson(`${r.base}/prompt`, r.headers, body, keepAlive);
      if (res.status === 200) accepted.push({ file, id: res.body.prompt_id, postedAt, interactive });
      else refused.push({ file, status: res.status, type: String(res.body?.error?.type ?? res.status), message: refusal(res.body) });
    }
    note(`modes (${mode}): ${accepted.length} accepted, ${refused.length} refused; running …`);
    const unfinished: string[] = [];
    for (const a of accepted) await follower.final(a.id, 900_000).catch(() => unfinished.push(a.file));
    const ends = accepted.map((a) => follower.ended.get(a.id)).filter((t): t is number => t !== undefined);
    const interactive = accepted.filter((a) => a.interactive && follower.ended.has(a.id)).map((a) => follower.ended.get(a.id)! - a.postedAt);
    const batch = accepted.filter((a) => !a.interactive && follower.ended.has(a.id)).map((a) => follower.ended.get(a.id)! - a.postedAt);
    const failed = accepted.filter((a) => follower.failed.has(a.id)).map((a) => ({ file: a.file, error: follower.failed.get(a.id)! }));
    return {
      prompts: prompts.length,
      accepted: accepted.length,
      interactive: accepted.filter((a) => a.interactive).length,
      makespan_s: round((Math.max(...ends) - first) / 1000, 2),
      interactive_p50_s: round(percentile(interactive, 50) / 1000, 2),
      interactive_p99_s: round(percentile(interactive, 99) / 1000, 2),
      batch_p50_s: round(percentile(batch, 50) / 1000, 2),
      standin_prompts: r.standins.map((s) => s.prompts().length),
      refused_count: refused.length,
      refused,
      failed_count: failed.length,
      failed,
      unfinished,
    };
  } finally {
    keepAlive.destroy();
    ws.terminate();
    await stopAgent(r);
  }
}

/** C: the shared prompts, segmented and whole-graph, on 8 stand-in GPUs, beside the simulator's figures. */
async function modes() {
  const dir = sharedDataDir("comfyui");
  if (dir === null) return { skipped: "../shared/data/comfyui is absent: the modes comparison needs the shared ComfyUI prompts" };
  const prompts = loadPrompts(dir);
  const inventory = standinInventory(prompts);
  const segmented = await modePhase(prompts, "segmented", inventory);
  const wholeGraph = await modePhase(prompts, "whole-graph", inventory);
  const graphs = comfyPromptsFromDir(dir);
  // Submitted all at once, as the real phases are; the simulator draws its own (seeded) interactive third.
  const simulated = compareComfyModes({ prompts: graphs.prompts, gpus: GPUS, meanGapS: 0, interactiveShare: INTERACTIVE_SHARE });
  const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : round(a / b, 2));
  return {
    gpus: GPUS,
    node_delay_ms: nodeDelayMs,
    interactive_share: INTERACTIVE_SHARE,
    classes_offered: Object.keys(inventory.objectInfo).length,
    models_offered: inventory.models,
    segmented,
    whole_graph: wholeGraph,
    segmented_over_whole_graph: { makespan: ratio(segmented.makespan_s, wholeGraph.makespan_s), interactive_p99: ratio(segmented.interactive_p99_s, wholeGraph.interactive_p99_s) },
    simulated: {
      ...simulated,
      skipped_files: graphs.skipped,
      segmented_over_whole_graph: {
        makespan: ratio(simulated.segmented.makespan_s, simulated.whole_graph.makespan_s),
        interactive_p99: ratio(simulated.segmented.interactive_p99_s, simulated.whole_graph.interactive_p99_s),
      },
    },
  };
}

async function main() {
  // Other work on the machine shows in the tails: the load when the run began is reported beside them.
  const loadAtStart = round(loadavg()[0]!, 2);
  note("ws fan-out …");
  const ws = await wsFanout();
  note(`ws: p99 ${ws.fanout_p99_ms} ms; prompt → execution_start …`);
  const start = await promptStart();
  note(`added p50 ${start.added_p50_ms} ms; modes …`);
  const m = await modes();
  const results = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version, load_1m_at_start: loadAtStart },
    note: [
      "ws_clients: ComfyUI stages simulated (no stand-in) in this part; fan-out latency is, per client and round, the arrival of the first `status` message after a POST /prompt (no client_id) minus the time the POST was sent; it includes the POST's handling",
      "the load generator (every ws client), the stand-in ComfyUI servers and the agent process share this machine's cores",
      "prompt_to_execution_start: direct = POST to the stand-in → execution_start on its ws; agent = POST /comfyui/prompt → execution_start on the agent's /ws, the stand-in attached as the one GPU's server (the agent sends execution_start when the prompt's first stage starts, its stage.running event); alternating rounds, after a warm-up",
      "modes: real = the agent with 8 stand-in GPUs (node time scaled by --node-delay-ms); simulated = compareComfyModes on 8 simulated H100s (cost-table durations); compare the segmented/whole-graph ratios, not the seconds; every stand-in node takes the same time, so the real ratio shows the cost of splitting (dispatch, handoffs), not the GPU-time differences the cost table models",
    ],
    ws_clients: ws,
    prompt_to_execution_start_p50_ms: { added: start.added_p50_ms, ...start },
    modes: m,
    targets: {
      ws_clients_held: ws.held >= 1000,
      ws_fanout_p99_ms: ws.fanout_p99_ms < 100,
      prompt_to_execution_start_added_p50_ms: start.added_p50_ms < 20,
    },
  };
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

await main();
