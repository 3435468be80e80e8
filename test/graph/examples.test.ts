import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { loadWorkflowFile, stagesFor, type Stage } from "../../runtime/graph/index.ts";
// @ts-expect-error: a plain JavaScript module of the examples, without type declarations
import { decodePng } from "../../examples/workflows/stages/png.mjs";

const repoRoot = new URL("../../", import.meta.url).pathname;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Reads a PNG's header and re-inflates its image data, checking it is as large as the header says. */
function inspectPng(path: string): { width: number; height: number; pixels: Buffer } {
  const buffer = readFileSync(path);
  expect(buffer.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
  expect(buffer.toString("latin1", 12, 16)).toBe("IHDR");
  const width = buffer.readUInt32BE(16);
  const height = buffer.readUInt32BE(20);
  expect(buffer[24]).toBe(8); // bit depth
  expect(buffer[25]).toBe(2); // RGB
  const idat: Buffer[] = [];
  for (let offset = 8; offset < buffer.length; ) {
    const length = buffer.readUInt32BE(offset);
    if (buffer.toString("latin1", offset + 4, offset + 8) === "IDAT") idat.push(buffer.subarray(offset + 8, offset + 8 + length));
    offset += 12 + length;
  }
  expect(inflateSync(Buffer.concat(idat)).length).toBe(height * (1 + width * 3));
  const decoded = decodePng(buffer) as { width: number; height: number; pixels: Buffer };
  expect([decoded.width, decoded.height]).toEqual([width, height]);
  return decoded;
}

/** Dependency order of stages (Kahn's algorithm), as a tiny executor would run them. */
function runOrder(stages: readonly Stage[]): Stage[] {
  const done = new Set<string>();
  const order: Stage[] = [];
  while (order.length < stages.length) {
    const next = stages.find((s) => !done.has(s.id) && s.needs.every((n) => done.has(n)));
    if (!next) throw new Error("no runnable stage left");
    done.add(next.id);
    order.push(next);
  }
  return order;
}

/** Runs every stage as a process, with each needed stage's outputs under $GPUFABRIC_INPUT_DIR/<id>/. */
function runWorkflow(stages: readonly Stage[], work: string): Map<string, string> {
  const outputs = new Map<string, string>();
  for (const stage of runOrder(stages)) {
    const inputDir = join(work, stage.id, "in");
    const outputDir = join(work, stage.id, "out");
    mkdirSync(inputDir, { recursive: true });
    mkdirSync(outputDir, { recursive: true });
    for (const need of stage.needs) symlinkSync(outputs.get(need)!, join(inputDir, need), "dir");
    const [program, ...args] = stage.run!.command;
    const result = spawnSync(program === "node" ? process.execPath : program!, args, {
      cwd: repoRoot,
      encoding: "utf8",
      env: { ...process.env, ...stage.run!.env, GPUFABRIC_INPUT_DIR: inputDir, GPUFABRIC_OUTPUT_DIR: outputDir },
    });
    expect(result.status, `${stage.id} failed: ${result.stderr}`).toBe(0);
    outputs.set(stage.id, outputDir);
  }
  return outputs;
}

describe("examples/workflows/contact-sheet.yaml", () => {
  const graph = loadWorkflowFile(join(repoRoot, "examples/workflows/contact-sheet.yaml"));
  const stages = stagesFor(graph);

  it("declares GPU resources on the render and upscale stages only", () => {
    expect(graph.format).toBe("native");
    expect(stages).toHaveLength(10);
    for (const stage of stages) {
      const gpuLike = /^(render|upscale)-\d$/.test(stage.id);
      expect(stage.resources.gpus).toBe(gpuLike ? 1 : 0);
      expect(stage.resources.vramMiB > 0).toBe(gpuLike);
      expect(stage.run?.command[0]).toBe("node");
      expect(stage.estimate!.durationS).toBeGreaterThan(0);
    }
    expect(stages.find((s) => s.id === "contact-sheet")!.needs).toEqual(["upscale-1", "upscale-2", "upscale-3", "upscale-4"]);
  });

  it("runs end to end and produces real PNGs", () => {
    const work = mkdtempSync(join(tmpdir(), "contact-sheet-"));
    const outputs = runWorkflow(stages, work);

    const scenes = JSON.parse(readFileSync(join(outputs.get("prompt")!, "scenes.json"), "utf8")) as { scenes: { index: number; width: number; height: number }[] };
    expect(scenes.scenes.map((s) => s.index)).toEqual([1, 2, 3, 4]);

    const renders = [1, 2, 3, 4].map((i) => inspectPng(join(outputs.get(`render-${i}`)!, `scene-${i}.png`)));
    for (const image of renders) {
      expect([image.width, image.height]).toEqual([256, 192]);
      // Real pictures: many distinct colours, not a flat fill.
      const colours = new Set<number>();
      for (let p = 0; p < image.pixels.length; p += 3) colours.add(image.pixels.readUIntBE(p, 3));
      expect(colours.size).toBeGreaterThan(500);
    }
    // Different scenes are different pictures.
    expect(renders[0]!.pixels.equals(renders[1]!.pixels)).toBe(false);

    for (const i of [1, 2, 3, 4]) {
      const big = inspectPng(join(outputs.get(`upscale-${i}`)!, `scene-${i}.png`));
      expect([big.width, big.height]).toEqual([512, 384]);
      // Bilinear 2x: the top-left output pixel equals the top-left source pixel (edge clamping).
      expect(big.pixels.subarray(0, 3).equals(renders[i - 1]!.pixels.subarray(0, 3))).toBe(true);
    }

    const sheetDir = outputs.get("contact-sheet")!;
    expect(readdirSync(sheetDir).sort()).toEqual(["contact-sheet.json", "contact-sheet.png"]);
    const sheet = inspectPng(join(sheetDir, "contact-sheet.png"));
    // Two columns and two rows of 512×384 with 8-pixel margins.
    expect([sheet.width, sheet.height]).toEqual([8 + 2 * (512 + 8), 8 + 2 * (384 + 8)]);
    const layout = JSON.parse(readFileSync(join(sheetDir, "contact-sheet.json"), "utf8")) as { images: { stage: string; left: number; top: number }[] };
    expect(layout.images.map((i) => [i.stage, i.left, i.top])).toEqual([
      ["upscale-1", 8, 8],
      ["upscale-2", 528, 8],
      ["upscale-3", 8, 400],
      ["upscale-4", 528, 400],
    ]);
    // The sheet holds the upscaled image where the layout says.
    const upscaled = decodePng(readFileSync(join(outputs.get("upscale-4")!, "scene-4.png"))) as { pixels: Buffer };
    const at = (400 * sheet.width + 528) * 3;
    expect(sheet.pixels.subarray(at, at + 512 * 3).equals(upscaled.pixels.subarray(0, 512 * 3))).toBe(true);
  });

  it("fails a stage with a clear message on bad arguments", () => {
    const work = mkdtempSync(join(tmpdir(), "stage-"));
    const result = spawnSync(process.execPath, ["examples/workflows/stages/prompt.mjs", "--scenes", "0"], {
      cwd: repoRoot,
      encoding: "utf8",
      env: { ...process.env, GPUFABRIC_OUTPUT_DIR: work },
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--scenes is '0': must be a whole number from 1 to 64");
    const missing = spawnSync(process.execPath, ["examples/workflows/stages/render.mjs"], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, GPUFABRIC_INPUT_DIR: "", GPUFABRIC_OUTPUT_DIR: "" } });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("GPUFABRIC_INPUT_DIR is not set");
  });
});

describe("examples/comfyui/txt2img-upscale.json", () => {
  it("imports and segments into generation and upscale stages", () => {
    const graph = loadWorkflowFile(join(repoRoot, "examples/comfyui/txt2img-upscale.json"));
    expect(graph).toMatchObject({ format: "comfyui", name: "txt2img-upscale" });
    const stages = stagesFor(graph);
    expect(stages.map((s) => [s.id, s.needs, s.comfyNodes, s.resources.gpus, s.resources.model])).toEqual([
      ["ksampler-1", [], ["1", "2", "3", "4", "5", "6"], 1, "sd_xl_base_1.0.safetensors"],
      ["imageupscalewithmodel-7", ["ksampler-1"], ["7", "8", "9"], 1, "RealESRGAN_x4plus.pth"],
    ]);
    // 30 steps with CFG on SDXL at 1 MP dominate the generation stage.
    expect(stages[0]!.estimate!.durationS).toBeGreaterThan(30 * 2 * 0.08);
  });
});
