/**
 * Throughput of the workflow model: import + validation + segmentation of the sample ComfyUI prompts
 * (when the shared sample folder is there), of a generated 10,000-node ComfyUI graph and of a
 * 10,000-stage native chain, after one warm-up run. Prints JSON. Usage: npm run bench:graph [-- --runs N]
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseWorkflowText, stagesFor } from "../runtime/graph/index.ts";

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write("bench:graph: --runs must be a whole number of at least 1\n");
  process.exit(2);
}

interface Case {
  readonly name: string;
  readonly documents: readonly { readonly text: string; readonly file: string }[];
}

/** Median wall time in ms of importing and segmenting every document of a case. */
function measure(c: Case): { name: string; documents: number; nodes: number; stages: number; median_ms: number; nodes_per_s: number } {
  let nodes = 0;
  let stages = 0;
  const times: number[] = [];
  // One untimed run first, so the figures are steady-state rather than JIT warm-up.
  for (let r = -1; r < runs; r++) {
    nodes = 0;
    stages = 0;
    const start = process.hrtime.bigint();
    for (const doc of c.documents) {
      const graph = parseWorkflowText(doc.text, doc.file);
      nodes += graph.comfyNodes?.length ?? graph.stages.length;
      stages += stagesFor(graph).length;
    }
    if (r >= 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return { name: c.name, documents: c.documents.length, nodes, stages, median_ms: Math.round(median * 100) / 100, nodes_per_s: Math.round(nodes / (median / 1000)) };
}

/** A wide ComfyUI graph: `branches` text-to-image-and-upscale chains sharing one checkpoint. */
function generatedComfy(branches: number): string {
  const prompt: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {
    "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd_xl_base_1.0.safetensors" } },
    "2": { class_type: "UpscaleModelLoader", inputs: { model_name: "RealESRGAN_x4plus.pth" } },
  };
  for (let b = 0; b < branches; b++) {
    const id = (k: number) => String(10 + b * 6 + k);
    prompt[id(0)] = { class_type: "CLIPTextEncode", inputs: { text: `scene ${b}`, clip: ["1", 1] } };
    prompt[id(1)] = { class_type: "EmptyLatentImage", inputs: { width: 1024, height: 1024, batch_size: 1 } };
    prompt[id(2)] = { class_type: "KSampler", inputs: { seed: b, steps: 20, cfg: 7, denoise: 1, model: ["1", 0], positive: [id(0), 0], negative: [id(0), 0], latent_image: [id(1), 0] } };
    prompt[id(3)] = { class_type: "VAEDecode", inputs: { samples: [id(2), 0], vae: ["1", 2] } };
    prompt[id(4)] = { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["2", 0], image: [id(3), 0] } };
    prompt[id(5)] = { class_type: "SaveImage", inputs: { filename_prefix: `b${b}`, images: [id(4), 0] } };
  }
  return JSON.stringify(prompt);
}

function nativeChain(stages: number): string {
  const lines = ["apiVersion: gpufabric.dev/v1", "kind: Workflow", "metadata: { name: chain }", "spec:", "  stages:"];
  for (let i = 0; i < stages; i++) lines.push(`    - { id: s${i}${i > 0 ? `, needs: [s${i - 1}]` : ""}, resources: { gpus: 1, vram: 8Gi } }`);
  return lines.join("\n");
}

const cases: Case[] = [];
const shared = fileURLToPath(new URL("../../shared/data/comfyui", import.meta.url));
if (existsSync(shared)) {
  const files = readdirSync(shared).filter((f) => f.endsWith(".json")).sort();
  cases.push({ name: "comfyui-samples", documents: files.map((f) => ({ file: f, text: readFileSync(join(shared, f), "utf8") })) });
}
cases.push({ name: "comfyui-generated-9998-nodes", documents: [{ file: "generated.json", text: generatedComfy(1666) }] });
cases.push({ name: "native-chain-10000-stages", documents: [{ file: "chain.yaml", text: nativeChain(10_000) }] });

process.stdout.write(`${JSON.stringify({ runs, results: cases.map(measure) }, null, 2)}\n`);
