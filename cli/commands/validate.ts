import type { Command } from "commander";
import { ValidationError } from "../../runtime/config/errors.ts";
import { loadWorkflowFile, stagesFor, type Stage, type WorkflowGraph } from "../../runtime/graph/index.ts";
import { CostModel } from "../../runtime/graph/cost/cost-model.ts";
import { EXIT } from "../errors.ts";

interface ValidateOptions {
  json?: boolean;
}

/** `gpufabric validate FILE`: checks a workflow file and shows the stages gpufabric would schedule. */
export function register(program: Command): void {
  program
    .command("validate")
    .description("validate a workflow file (gpufabric Workflow YAML/JSON or ComfyUI API-format prompt) and list its schedulable stages")
    .argument("<file>", "workflow file")
    .option("--json", "print the result as JSON")
    .action((file: string, options: ValidateOptions) => {
      let graph: WorkflowGraph;
      try {
        graph = loadWorkflowFile(file);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        if (options.json) process.stdout.write(`${JSON.stringify({ file, valid: false, errors: err.issues }, null, 2)}\n`);
        else process.stderr.write(`${err.message}\n`);
        // A file that cannot be read is a usage error (2); a workflow with problems is a finding (1), as for check.
        process.exitCode = err.issues.every((i) => i.field === "(file)") ? EXIT.usage : EXIT.failure;
        return;
      }
      const stages = stagesFor(graph);
      const unknown = unknownClassTypes(graph);
      if (options.json) {
        const out = { file, valid: true, name: graph.name, format: graph.format, nodes: graph.comfyNodes?.length, stages: stages.map(stageJson), unknownClassTypes: unknown };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        process.stdout.write(describe(file, graph, stages));
        if (unknown && unknown.length > 0) {
          process.stdout.write(`\nnote: no cost figures for class types ${unknown.map((c) => `'${c}'`).join(", ")}: each such node is assumed to need a GPU, 2 GiB and 2 s\n`);
        }
      }
    });
}

/** ComfyUI class types the cost model has no figures for (estimated by default), sorted. */
function unknownClassTypes(graph: WorkflowGraph): string[] | undefined {
  if (!graph.comfyNodes) return undefined;
  const estimates = new CostModel().estimateNodes(graph.comfyNodes);
  return [...new Set([...estimates.values()].filter((e) => e.estimated === "default").map((e) => e.classType))].sort();
}

function stageJson(stage: Stage) {
  return {
    id: stage.id,
    needs: stage.needs,
    gpus: stage.resources.gpus,
    vramMiB: stage.resources.vramMiB,
    ...(stage.resources.model !== undefined && { model: stage.resources.model }),
    ...(stage.estimate && { estimate: stage.estimate }),
    ...(stage.comfyNodes && { comfyNodes: stage.comfyNodes }),
  };
}

function describe(file: string, graph: WorkflowGraph, stages: readonly Stage[]): string {
  const what = graph.format === "comfyui" ? `ComfyUI prompt, ${graph.comfyNodes?.length ?? 0} nodes in ${stages.length} GPU-affine stages` : `native workflow, ${stages.length} stages`;
  const rows = [
    ["STAGE", "NEEDS", "GPUS", "VRAM", "MODEL", "ESTIMATE", ...(graph.format === "comfyui" ? ["NODES"] : [])],
    ...stages.map((s) => [
      s.id,
      s.needs.join(",") || "-",
      String(s.resources.gpus),
      formatMiB(s.resources.vramMiB),
      s.resources.model ?? "-",
      s.estimate ? `${formatSeconds(s.estimate.durationS)}${s.estimate.modelLoadS > 0 ? ` +${formatSeconds(s.estimate.modelLoadS)} load` : ""}` : "-",
      ...(graph.format === "comfyui" ? [(s.comfyNodes ?? []).join(",")] : []),
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  const table = rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join("  ")).join("\n");
  return `${file}: valid ${what} ('${graph.name}')\n\n${table}\n`;
}

function formatMiB(mib: number): string {
  if (mib === 0) return "0";
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : mib >= 1024 ? `${(mib / 1024).toFixed(1)}Gi` : `${mib}Mi`;
}

function formatSeconds(s: number): string {
  return s >= 100 ? `${Math.round(s)}s` : `${Number(s.toPrecision(2))}s`;
}
