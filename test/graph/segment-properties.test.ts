import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OUTPUT_TYPES, isGpuAffine, outputType, parseWorkflow, stagesFor, type WorkflowGraph } from "../../runtime/graph/index.ts";

/** Class types to build random graphs from: loaders, GPU work, portable image steps, and an unknown one. */
const CLASSES = ["CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode", "VAEEncode", "ImageUpscaleWithModel", "UpscaleModelLoader", "ImageScale", "Canny", "SaveImage", "LoadImage", "AcmeNode"];

/** A random ComfyUI prompt: node i links only to earlier nodes, through outputs their class has. */
const promptArbitrary = fc
  .array(fc.record({ cls: fc.constantFrom(...CLASSES), links: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 3 }) }), { minLength: 1, maxLength: 40 })
  .map((specs) => {
    const prompt: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {};
    specs.forEach((spec, i) => {
      const inputs: Record<string, unknown> = {};
      if (i > 0) {
        spec.links.forEach(([target, output], k) => {
          const from = target % i;
          const outputs = OUTPUT_TYPES[specs[from]!.cls]?.length ?? 2;
          if (outputs > 0) inputs[`in${k}`] = [`n${from}`, output % outputs];
        });
      }
      // Not integer-like, so object key order is insertion order and shuffling means something.
      prompt[`n${i}`] = { class_type: spec.cls, inputs };
    });
    return prompt;
  });

function checkSegmentation(graph: WorkflowGraph): void {
  const stages = stagesFor(graph);
  const stageOf = new Map<string, string>();
  const position = new Map<string, number>();
  stages.forEach((stage, i) => {
    position.set(stage.id, i);
    for (const n of stage.comfyNodes!) {
      expect(stageOf.has(n)).toBe(false);
      stageOf.set(n, stage.id);
    }
    for (const need of stage.needs) expect(position.get(need)).toBeLessThan(i);
  });
  expect(stageOf.size).toBe(graph.comfyNodes!.length);
  const byId = new Map(graph.comfyNodes!.map((n) => [n.id, n]));
  for (const node of graph.comfyNodes!) {
    for (const link of node.links) {
      const from = stageOf.get(link.from)!;
      const to = stageOf.get(node.id)!;
      if (isGpuAffine(outputType(byId.get(link.from)!.classType, link.output))) expect(from).toBe(to);
      if (from !== to) expect(stages[position.get(to)!]!.needs).toContain(from);
    }
  }
}

describe("segmentation properties", () => {
  it("covers every node once, keeps GPU-affine links inside stages and orders stages topologically", () => {
    fc.assert(
      fc.property(promptArbitrary, (prompt) => {
        checkSegmentation(parseWorkflow(prompt, { format: "comfyui" }));
      }),
      { numRuns: 300, seed: 20261122 },
    );
  });

  it("does not depend on the order of the nodes in the document", () => {
    fc.assert(
      fc.property(promptArbitrary, fc.nat(), (prompt, salt) => {
        const entries = Object.entries(prompt);
        // A deterministic shuffle driven by the salt.
        const shuffled = entries.map((e, i) => [((i + 1) * 2654435761 + salt) % 4294967296, e] as const).sort((a, b) => a[0] - b[0]).map(([, e]) => e);
        const reordered = Object.fromEntries(shuffled);
        expect(Object.keys(reordered)).toEqual(shuffled.map(([id]) => id));
        expect(stagesFor(parseWorkflow(reordered))).toEqual(stagesFor(parseWorkflow(prompt)));
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});
