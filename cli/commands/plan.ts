import type { Command } from "commander";
import { MIB_PER_GIB, describeInventory, parsePoolSpec } from "../../runtime/scheduler/inventory.ts";
import type { Placement } from "../../runtime/scheduler/types.ts";
import { GpufabricPolicy } from "../../runtime/sim/gpufabric-policy.ts";
import { simulate } from "../../runtime/sim/simulator.ts";
import { loadWorkload } from "../../runtime/sim/workload-files.ts";
import { EXIT } from "../errors.ts";

interface PlanOptions {
  pool: string;
  json?: boolean;
}

interface PlannedStage {
  stage: string;
  gpus: readonly string[];
  vramMiB: number;
  model: string | null;
  startS: number;
  endS: number;
  why: Placement["reason"];
}

const GANTT_WIDTH = 48;

/** `gpufabric plan WORKFLOW`: one run's segments, placements and predicted timeline on a pool. */
export function register(program: Command): void {
  program
    .command("plan")
    .description("show how gpufabric would run one workflow on a pool: its stages, where each goes and why, and the predicted timeline")
    .argument("<workflow>", "workflow file (gpufabric Workflow, ComfyUI API prompt or WfCommons instance)")
    .requiredOption("--pool <spec>", "GPUs as COUNTxMODEL-GiB[,…], e.g. 8xH100-80,16xA10G-24")
    .option("--json", "print the plan as JSON")
    .action((file: string, options: PlanOptions) => {
      const gpus = parsePoolSpec(options.pool, "--pool");
      const workload = loadWorkload(file, { seed: 1, gpus, runs: 1 });
      const run = workload.arrivals[0]!.run;
      const policy = new GpufabricPolicy({ gpus, tenants: workload.tenants, settings: workload.settings ?? {}, seed: 1 });
      const planned = new Map<string, PlannedStage>();
      const step = policy.step.bind(policy);
      policy.step = (now) => {
        const out = step(now);
        for (const d of out.decisions ?? []) {
          if (d.kind !== "placed") continue;
          const spec = run.stages.find((s) => s.id === d.stageId)!;
          planned.set(d.stageId, { stage: d.stageId, gpus: d.gpuIds, vramMiB: spec.vramMiB, model: spec.model ?? null, startS: now, endS: now, why: d.reason });
        }
        return out;
      };
      const finished = policy.finished.bind(policy);
      policy.finished = (runId, stageId, now, outcome) => {
        const p = planned.get(stageId);
        if (p) p.endS = now;
        finished(runId, stageId, now, outcome);
      };
      const result = simulate({ ...workload, noise: 0 }, policy, { seed: 1 });
      if (result.details.runsRejected > 0) {
        const r = result.details.rejections[0]!;
        process.stderr.write(`gpufabric: the workflow cannot run on this pool: ${r.field}: ${r.message}\n`);
        process.exitCode = EXIT.failure;
        return;
      }
      const stages = run.stages.map((s) => planned.get(s.id)!).sort((a, b) => a.startS - b.startS || (a.stage < b.stage ? -1 : 1));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ workflow: file, pool: options.pool, makespanS: result.row.makespan_s, lowerBoundS: result.row.lower_bound_s, modelLoads: result.row.model_loads, stages }, null, 2)}\n`);
        return;
      }
      process.stdout.write(render(file, describeInventory(gpus), result.row.makespan_s ?? 0, stages));
    });
}

function render(file: string, pool: string, makespan: number, stages: PlannedStage[]): string {
  const idWidth = Math.max(5, ...stages.map((s) => s.stage.length));
  const gpuWidth = Math.max(4, ...stages.map((s) => (s.gpus.length ? s.gpus.join("+") : "cpu").length));
  const scale = makespan > 0 ? GANTT_WIDTH / makespan : 0;
  const lines = [`plan for ${file} on ${pool}: predicted makespan ${round(makespan)} s`, ""];
  lines.push(`${"stage".padEnd(idWidth)}  ${"gpus".padEnd(gpuWidth)}  ${"VRAM GiB".padStart(8)}  ${"start s".padStart(8)}  ${"end s".padStart(8)}  timeline`);
  for (const s of stages) {
    const from = Math.floor(s.startS * scale);
    const len = Math.max(1, Math.round((s.endS - s.startS) * scale));
    const bar = " ".repeat(from) + "█".repeat(Math.min(len, GANTT_WIDTH - from + 1));
    lines.push(
      `${s.stage.padEnd(idWidth)}  ${(s.gpus.length ? s.gpus.join("+") : "cpu").padEnd(gpuWidth)}  ${round(s.vramMiB / MIB_PER_GIB).toString().padStart(8)}  ${round(s.startS).toString().padStart(8)}  ${round(s.endS).toString().padStart(8)}  |${bar}`,
    );
  }
  lines.push("", "why there:");
  for (const s of stages) {
    if (s.gpus.length === 0) continue;
    const w = s.why;
    const parts = [`needs ${round(w.needMiB / MIB_PER_GIB)} GiB, ${w.availableMiB.map((m) => round(m / MIB_PER_GIB)).join("/")} GiB available after ${round(w.headroomMiB / MIB_PER_GIB)} GiB headroom`];
    if (s.model) parts.push(w.residentModel ? `model ${s.model} already resident` : `loads ${s.model} (${w.modelLoadS} s)`);
    if (w.inputLocality !== "none") parts.push(`inputs on the same ${w.inputLocality}`);
    if (w.evicted.length) parts.push(`evicts ${w.evicted.map((e) => e.model).join(", ")}`);
    lines.push(`  ${s.stage}: ${parts.join("; ")}`);
  }
  return `${lines.join("\n")}\n`;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
