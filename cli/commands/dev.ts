import { Option, type Command } from "commander";
import type { PlatformConfig } from "../../runtime/config/schema.ts";
import { devCluster, type DevClusterOptions } from "./dev-cluster.ts";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { MultiBar, type SingleBar } from "cli-progress";
import { pino } from "pino";
import { startAgent } from "../../runtime/agent/index.ts";
import { localPlatform } from "../../runtime/agent/service/local-platform.ts";
import { CliError, EXIT } from "../errors.ts";
import { readSynthOutput } from "../synth-output.ts";
import { intOption, stoppedLine } from "./agent.ts";
import { untilSignalled } from "../signals.ts";
import { appFromCdktfJson } from "./synth.ts";

interface DevOptions extends DevClusterOptions {
  dataDir: string;
  port: string;
  app?: string;
  timeScale: string;
}

interface RunProgress {
  readonly workflow: string;
  readonly tenant: string;
  readonly id: string;
  status: string;
  done: number;
  total: number;
  gpus: string[];
  simulated: boolean;
  artifacts: string[];
  elapsedS: number;
  failure?: string;
  /** Cluster mode: the node each stage ran on. */
  nodes?: Record<string, string>;
}

/** Where the examples are submitted: the agent, or a local cluster's first control plane. */
interface Target {
  readonly url: string;
  readonly simulated: boolean;
  readonly workflows: PlatformConfig["workflows"];
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

/** `gpufabric dev` (what `npm start` runs): the agent on this machine with the synthesized platform config, running the example workflows. */
export { submitExamples, followRuns, type RunProgress, type Target };

export function register(program: Command): void {
  program
    .command("dev")
    .description("synthesize main.ts, start the agent on 127.0.0.1 with its platform config, submit the example workflows and show their progress")
    .option("--once", "exit after the examples finish, with a summary (exit 0 only if every run succeeded)")
    .option("--json", "print the summary as JSON (with --once)")
    .option("--data-dir <dir>", "store, artifacts, logs and tokens", ".gpufabric")
    .option("--port <n>", "port to listen on; 0 picks a free one", "0")
    .option("--app <command>", "command that runs the cdktf app (default: the app in ./cdktf.json)")
    .option("--time-scale <x>", "multiplies the estimated durations of simulated stages", "0.2")
    .option("--unsafe-shared-identity", "run stages without the sandbox, as your own user (only where bubblewrap cannot run; logged and audited)")
    .option("--workers <n>", "a local cluster: N worker processes, each a node with its own simulated GPUs (the pool's GPUs per node); 'auto': as many as the queue needs, from zero")
    .option("--max-workers <n>", "with --workers auto: the most workers started at once (default 4)")
    .option("--scale-down-cooldown <s>", "with --workers auto: seconds of idle surplus before workers drain and exit (default 30)")
    .option("--control-planes <n>", "with --workers: control-plane processes (one leads)", "2")
    .option("--gpus-per-worker <n>", "with --workers: simulated GPUs of each worker's node", "2")
    .addOption(new Option("--database <url>", "with --workers: the cluster's PostgreSQL (default: a throwaway local server)").env("GPUFABRIC_DATABASE_URL"))
    .action(async (options: DevOptions) => {
      const dataDir = resolve(options.dataDir);
      const port = intOption("--port", options.port);
      const timeScale = Number(options.timeScale);
      if (!(timeScale >= 0)) throw new CliError(`--time-scale must be a number of 0 or more (got '${options.timeScale}')`, EXIT.usage);
      // Human output goes to stderr under --json, so stdout holds only the summary.
      const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // private to this user: the agent keeps its keys and store here

      const outdir = join(dataDir, "cdktf.out");
      const app = options.app ?? appFromCdktfJson();
      say(`synthesizing with '${app}' …`);
      const synth = spawnSync(app, { shell: true, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, CDKTF_OUTDIR: outdir } });
      if (synth.status !== 0) throw new CliError(`'${app}' failed (exit ${synth.status ?? synth.signal}): see the error above`, EXIT.failure);
      const configs = readSynthOutput(outdir).flatMap((s) => s.platformConfigs.map((c) => c.config));
      const local = localPlatform(configs, dataDir, port);
      if (options.workers !== undefined) return devCluster(options, local, dataDir, timeScale, say);
      const logFile = join(dataDir, "agent.log");
      const agent = await startAgent({
        config: local.config,
        dataDir,
        simulatedTimeScale: timeScale,
        ...(options.unsafeSharedIdentity === true && { unsafeSharedIdentity: true }),
        logger: pino(
          { level: "info", redact: { paths: ["req.headers.authorization", "headers.authorization"], censor: "[redacted]" } },
          pino.destination({ dest: logFile, mkdir: true, sync: false })
        ),
      });
      const d = local.config.deployment;
      say(
        `agent of deployment '${d.name}' (pool ${d.pool})${local.mergedFrom.length ? `, with the workflows of ${local.mergedFrom.join(", ")} merged in` : ""}`
      );
      say(`  listening on ${agent.url}   data in ${dataDir}   logs in ${logFile}`);
      say(
        `  GPUs: ${
          agent.inventory.source === "simulated"
            ? `${agent.inventory.devices.length} simulated (no nvidia-smi here: stage processes run on the CPU, labelled simulated)`
            : `${agent.inventory.devices.length} found by nvidia-smi`
        }`
      );
      say("  API tokens (shown once; their hashes are in the data dir's tokens/):");
      for (const [tenant, token] of Object.entries(local.tokens)) say(`    ${tenant}: ${token}`);
      const first = Object.entries(local.tokens)[0];
      // With --once the agent exits after the examples: a hint to call it would lead nowhere.
      if (first && !options.once) {
        say(`  try: curl -H "Authorization: Bearer $TOKEN" ${agent.url}/v1/gpus   (TOKEN: the ${first[0]} token above)`);
        // The token rides in the fragment, which the browser never sends: the page trades it for a session cookie and drops it from the address bar.
        say(`  dashboard: ${agent.url}/ui/   (paste a token above, or open ${agent.url}/ui/#token=${first[1]} as ${first[0]})`);
      }

      let runs: RunProgress[];
      try {
        const target = { url: agent.url, simulated: agent.inventory.source === "simulated", workflows: agent.config.workflows };
        runs = await submitExamples(target, local.tokens);
        await followRuns(target, local.tokens, runs, Boolean(options.json) || !process.stdout.isTTY, say);
      } catch (err) {
        await agent.close();
        throw err;
      }
      const ok = runs.every((r) => r.status === "succeeded");
      const summary = {
        ok,
        url: agent.url,
        dataDir,
        deployment: d.name,
        mergedFrom: local.mergedFrom,
        simulatedGpus: agent.inventory.source === "simulated",
        runs,
      };
      if (options.once) await agent.close();
      if (options.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else {
        // A link only while the agent serves: with --once it has stopped, so the run's id is what stays useful.
        for (const r of runs)
          say(
            `${r.status === "succeeded" ? "✓" : "✗"} ${r.workflow} (${r.tenant}) ${r.status}: ${r.artifacts.length} artifact(s)${
              r.simulated ? ", simulated (labelled)" : ""
            }${r.failure ? ` (${r.failure})` : ""}  ${options.once ? `run ${r.id}` : `GET ${agent.url}/v1/runs/${r.id}`}`
          );
        if (options.once) say(`the agent stopped (--once); its runs stay in ${dataDir}: 'gpufabric dev --data-dir ${options.dataDir}' serves them again`);
      }
      if (options.once) {
        if (!ok) throw new CliError(`${runs.filter((r) => r.status !== "succeeded").length} example run(s) did not succeed: see ${logFile}`, EXIT.failure);
        return;
      }
      say(`serving on ${agent.url}; press Ctrl-C to stop`);
      await untilSignalled(async (signal) => {
        const left = { runs: agent.loop.activeRunCount, stages: agent.loop.runningStages().length };
        await agent.close();
        say(stoppedLine("gpufabric dev", signal, left));
      });
    });
}

/** Submits every workflow of the config once, as the first tenant it is bound to. */
async function submitExamples(agent: Target, tokens: Readonly<Record<string, string>>): Promise<RunProgress[]> {
  const runs: RunProgress[] = [];
  for (const wf of agent.workflows) {
    const tenant = wf.tenants.find((t) => tokens[t] !== undefined)!;
    const response = await fetch(`${agent.url}/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens[tenant]}`, "content-type": "application/json" },
      body: JSON.stringify({ workflowRef: wf.name }),
    });
    const body = (await response.json()) as { id?: string; status?: string; error?: { message: string } };
    if (response.status !== 202 || !body.id)
      throw new CliError(`submitting '${wf.name}' as ${tenant} failed (${response.status}): ${body.error?.message ?? "no id"}`, EXIT.failure);
    runs.push({
      workflow: wf.name,
      tenant,
      id: body.id,
      status: body.status ?? "queued",
      done: 0,
      total: 0,
      gpus: [],
      simulated: false,
      artifacts: [],
      elapsedS: 0,
    });
  }
  return runs;
}

/** Polls each run until it ends, showing one progress line per run (bars on a terminal, a line per change otherwise). */
async function followRuns(
  agent: Target,
  tokens: Readonly<Record<string, string>>,
  runs: RunProgress[],
  plain: boolean,
  say: (line: string) => void
): Promise<void> {
  const bars = plain
    ? undefined
    : new MultiBar({ format: "{workflow} |{bar}| {value}/{total} stages done, {activity}  {elapsed}s", hideCursor: true, clearOnComplete: false });
  const barOf = new Map<string, SingleBar>();
  const lastLine = new Map<string, string>();
  const startedMs = Date.now();
  while (runs.some((r) => !TERMINAL.has(r.status))) {
    for (const run of runs) {
      if (TERMINAL.has(run.status)) continue;
      const response = await fetch(`${agent.url}/v1/runs/${run.id}`, { headers: { authorization: `Bearer ${tokens[run.tenant]}` } });
      const view = (await response.json()) as {
        status: string;
        simulated: boolean;
        stages: Array<{ id: string; status: string; gpus: string[]; reason: string | null; node?: string | null }>;
        artifacts: Array<{ name: string; stage: string }>;
      };
      run.status = view.status;
      run.total = view.stages.length;
      run.done = view.stages.filter((s) => s.status === "succeeded").length;
      const active = view.stages.filter((s) => s.status === "running" || s.status === "placed");
      run.gpus = [...new Set(active.flatMap((s) => s.gpus))];
      run.simulated = view.simulated;
      run.artifacts = view.artifacts.map((a) => `${a.stage}/${a.name}`);
      for (const st of view.stages) if (st.node) (run.nodes ??= {})[st.id] = st.node;
      run.elapsedS = Math.round((Date.now() - startedMs) / 100) / 10;
      if (view.status === "failed") run.failure = view.stages.find((s) => s.status === "failed")?.reason ?? undefined;
      const running = { stages: active.length, gpus: run.gpus };
      const payload = { workflow: run.workflow.padEnd(18), activity: activityOf(run.status, running, agent.simulated), elapsed: run.elapsedS.toFixed(1) };
      if (bars) {
        const bar = barOf.get(run.id) ?? bars.create(run.total, 0, payload);
        barOf.set(run.id, bar);
        bar.setTotal(run.total);
        bar.update(run.done, payload);
      } else {
        const line = progressLine(run, running, agent.simulated);
        if (lastLine.get(run.id) !== line) say(`${line}  ${payload.elapsed}s`);
        lastLine.set(run.id, line);
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  bars?.stop();
}

/**
 * One run's progress: finished stages counted apart from running ones ("1/10 stages done, 4 running on
 * g1, …"), so a count of finished stages never reads as a count of running ones.
 */
export function progressLine(
  run: Pick<RunProgress, "workflow" | "status" | "done" | "total">,
  running: { readonly stages: number; readonly gpus: readonly string[] },
  simulated: boolean
): string {
  return `${run.workflow}: ${run.done}/${run.total} stages done, ${activityOf(run.status, running, simulated)}`;
}

function activityOf(status: string, running: { readonly stages: number; readonly gpus: readonly string[] }, simulated: boolean): string {
  if (running.stages > 0) return `${running.stages} running${running.gpus.length ? ` on ${running.gpus.join(", ")}${simulated ? " (simulated GPUs)" : ""}` : ""}`;
  // The run's own state when none of its stages runs: queued, or ended; "none running" between stages.
  return status === "running" ? "none running" : status;
}
