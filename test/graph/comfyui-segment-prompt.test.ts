import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  buildSegmentPrompt,
  handoffFilesOf,
  handoffPrefix,
  isComfyLink,
  outputType,
  parseWorkflow,
  parseWorkflowText,
  stagesFor,
  WHOLE_GRAPH_STAGE_ID,
  type ComfyNode,
  type SegmentPrompt,
  type WorkflowGraph,
} from "../../runtime/graph/index.ts";
import { sharedDataDir } from "../support/shared.ts";
import { node, txt2imgUpscale, type Prompt } from "./comfy-builders.ts";

const comfy = (prompt: Prompt): WorkflowGraph => parseWorkflow(prompt, { format: "comfyui", name: "t" });
const ADDED_CLASSES = new Set(["LoadImage", "ImageBatch", "ImageToMask", "MaskToImage", "SaveImage"]);
const NODE_ID = /^[A-Za-z0-9_.:-]+$/;

/** Two handoff files per crossing output, as a SaveImage of a batch of two would leave them. */
const twoFiles = (from: string, output: number) => [`${handoffPrefix(from, output)}_00001_.png`, `${handoffPrefix(from, output)}_00002_.png`];

/** The prompt ComfyUI's API format would hold for these nodes (what the importer read). */
function apiPrompt(nodes: readonly ComfyNode[]): SegmentPrompt["prompt"] {
  return Object.fromEntries(
    nodes.map((n) => [
      n.id,
      {
        class_type: n.classType,
        inputs: { ...n.inputs, ...Object.fromEntries(n.links.map((l) => [l.input, [l.from, l.output]])) },
        ...(n.title !== undefined && { _meta: { title: n.title } }),
      },
    ]),
  );
}

/** Checks that a segment prompt is a valid, self-contained prompt that keeps the stage's nodes, and returns how data crossed. */
function expectValidSegmentPrompt(graph: WorkflowGraph, stageNodes: readonly string[], result: SegmentPrompt): { copied: number } {
  const { prompt } = result;
  const byId = new Map(graph.comfyNodes!.map((n) => [n.id, n]));
  const own = new Set(stageNodes);
  const ids = Object.keys(prompt);
  for (const id of ids) expect(id).toMatch(NODE_ID);
  // ownNodes: unique, the stage's nodes first, no added node among them, and every one in the prompt.
  expect(new Set(result.ownNodes).size).toBe(result.ownNodes.length);
  expect(result.ownNodes.slice(0, stageNodes.length)).toEqual([...stageNodes]);
  for (const id of result.ownNodes) expect(prompt[id]?.class_type).toBe(byId.get(id)!.classType);
  // Every node is an own node or an added core node with a gf- id and a title.
  for (const id of ids) {
    if (result.ownNodes.includes(id)) continue;
    expect(id.startsWith("gf-"), `${id} is added`).toBe(true);
    expect(byId.has(id), `${id} does not clash with the prompt's ids`).toBe(false);
    expect(ADDED_CLASSES.has(prompt[id]!.class_type), `${id} is ${prompt[id]!.class_type}`).toBe(true);
    expect(prompt[id]!._meta?.title).toMatch(/^gf: /);
  }
  // Every link points at a node of the prompt, and the result imports again (no dangling id, no cycle).
  for (const [id, n] of Object.entries(prompt)) {
    for (const [input, value] of Object.entries(n.inputs)) if (isComfyLink(value)) expect(prompt[value[0]], `${id}.${input} → ${value[0]}`).toBeDefined();
  }
  expect(() => parseWorkflow(structuredClone(prompt), { format: "comfyui", name: "segment" })).not.toThrow();

  // Links into the stage: IMAGE from LoadImage (or ImageBatch of them), MASK through ImageToMask, others copied.
  for (const id of result.ownNodes) {
    const original = byId.get(id)!;
    for (const link of original.links) {
      const value = prompt[id]!.inputs[link.input] as [string, number];
      if (result.ownNodes.includes(link.from)) {
        expect(value).toEqual([link.from, link.output]);
        continue;
      }
      const type = outputType(byId.get(link.from)!.classType, link.output);
      const via = prompt[value[0]]!.class_type;
      if (type === "IMAGE") expect(["LoadImage", "ImageBatch"]).toContain(via);
      else expect(type).toBe("MASK");
      if (type === "MASK") expect(via).toBe("ImageToMask");
      expect(result.inputs.some((i) => i.node === link.from && i.output === link.output && i.kind === type)).toBe(true);
    }
  }
  // Links out of the stage: one SaveImage per (node, output), a MASK through MaskToImage first.
  const expectedOut = new Set<string>();
  for (const consumer of graph.comfyNodes!) {
    if (own.has(consumer.id)) continue;
    for (const link of consumer.links) {
      const type = own.has(link.from) ? outputType(byId.get(link.from)!.classType, link.output) : undefined;
      if (type === "IMAGE" || type === "MASK") expectedOut.add(`${link.from}/${link.output}/${type}`);
    }
  }
  expect(new Set(result.outputs.map((o) => `${o.node}/${o.output}/${o.kind}`))).toEqual(expectedOut);
  expect(result.outputs.length).toBe(expectedOut.size);
  for (const out of result.outputs) {
    const save = prompt[out.saveNode]!;
    expect(save.class_type).toBe("SaveImage");
    expect(save.inputs.filename_prefix).toBe(handoffPrefix(out.node, out.output));
    expect(out.prefix).toBe(handoffPrefix(out.node, out.output));
    const images = save.inputs.images as [string, number];
    if (out.kind === "IMAGE") expect(images).toEqual([out.node, out.output]);
    else expect(prompt[images[0]]).toEqual(expect.objectContaining({ class_type: "MaskToImage", inputs: { mask: [out.node, out.output] } }));
  }
  return { copied: result.ownNodes.length - stageNodes.length };
}

describe("handoff file names", () => {
  it("makes a prefix of the node id and output, with ':' and '.' replaced", () => {
    expect(handoffPrefix("8", 0)).toBe("gf-handoff-8-0");
    expect(handoffPrefix("57:8.1", 2)).toBe("gf-handoff-57_8_1-2");
  });

  it("picks a handoff's files in batch order, and only its own", () => {
    const names = [
      "gf-handoff-8-0_00010_.png",
      "gf-handoff-8-0_00002_.png",
      "gf-handoff-8-1_00001_.png",
      "gf-handoff-8-0_00001_.png",
      "gf-handoff-80-0_00001_.png",
      "out_00001_.png",
      "gf-handoff-8-0_00003_.webp",
      "sub/gf-handoff-8-0_00011_.png",
    ];
    expect(handoffFilesOf(names, "8", 0)).toEqual(["gf-handoff-8-0_00001_.png", "gf-handoff-8-0_00002_.png", "gf-handoff-8-0_00010_.png", "sub/gf-handoff-8-0_00011_.png"]);
    expect(handoffFilesOf(names, "8", 1)).toEqual(["gf-handoff-8-1_00001_.png"]);
    expect(handoffFilesOf(names, "9", 0)).toEqual([]);
  });
});

describe("a two-segment prompt: sampler on one GPU, upscale model on another", () => {
  const graph = comfy(txt2imgUpscale());
  const stages = stagesFor(graph);
  const original = apiPrompt(graph.comfyNodes!);

  it("segments as expected", () => {
    expect(stages.map((s) => s.comfyNodes)).toEqual([["1", "2", "3", "4", "5", "6"], ["7", "8", "9"]]);
  });

  it("ends the first segment in a SaveImage of the decoded image", () => {
    const first = buildSegmentPrompt(graph.comfyNodes!, stages[0]!.comfyNodes!, () => {
      throw new Error("the first segment reads no handoff");
    });
    expect(first).toEqual({
      prompt: {
        ...Object.fromEntries(["1", "2", "3", "4", "5", "6"].map((id) => [id, original[id]])),
        "gf-save-6-0": { class_type: "SaveImage", inputs: { images: ["6", 0], filename_prefix: "gf-handoff-6-0" }, _meta: { title: "gf: save IMAGE of node 6 output 0 for the next GPU" } },
      },
      outputs: [{ node: "6", output: 0, kind: "IMAGE", saveNode: "gf-save-6-0", prefix: "gf-handoff-6-0" }],
      inputs: [],
      ownNodes: ["1", "2", "3", "4", "5", "6"],
    });
    expect(Object.keys(first.prompt)).toEqual(["1", "2", "3", "4", "5", "6", "gf-save-6-0"]);
  });

  it("starts the second segment from a LoadImage of the handed-off file", () => {
    const asked: [string, number][] = [];
    const second = buildSegmentPrompt(graph.comfyNodes!, stages[1]!.comfyNodes!, (from, output) => {
      asked.push([from, output]);
      return ["gf-handoff-6-0_00001_.png"];
    });
    expect(asked).toEqual([["6", 0]]);
    expect(second).toEqual({
      prompt: {
        "7": original["7"],
        "8": { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["7", 0], image: ["gf-load-6-0-1", 0] } },
        "9": original["9"],
        "gf-load-6-0-1": { class_type: "LoadImage", inputs: { image: "gf-handoff-6-0_00001_.png" }, _meta: { title: "gf: load IMAGE of node 6 output 0 (image 1 of 1)" } },
      },
      outputs: [],
      inputs: [{ node: "6", output: 0, kind: "IMAGE", files: ["gf-handoff-6-0_00001_.png"] }],
      ownNodes: ["7", "8", "9"],
    });
  });

  it("joins a batch of handed-off images with ImageBatch, in file order", () => {
    const second = buildSegmentPrompt(graph.comfyNodes!, stages[1]!.comfyNodes!, (from, output) => [...twoFiles(from, output), `${handoffPrefix(from, output)}_00003_.png`]);
    expect(second.prompt["8"]!.inputs.image).toEqual(["gf-batch-6-0-3", 0]);
    expect(second.prompt["gf-batch-6-0-2"]).toEqual({ class_type: "ImageBatch", inputs: { image1: ["gf-load-6-0-1", 0], image2: ["gf-load-6-0-2", 0] }, _meta: { title: "gf: batch IMAGE of node 6 output 0 (images 1 to 2)" } });
    expect(second.prompt["gf-batch-6-0-3"]!.inputs).toEqual({ image1: ["gf-batch-6-0-2", 0], image2: ["gf-load-6-0-3", 0] });
    expect(second.prompt["gf-load-6-0-3"]!.inputs).toEqual({ image: "gf-handoff-6-0_00003_.png" });
  });

  it("throws naming the node and output when the upstream stage has not produced its file", () => {
    expect(() => buildSegmentPrompt(graph.comfyNodes!, stages[1]!.comfyNodes!, () => undefined)).toThrow(/node '6' \(VAEDecode\) output 0 \(IMAGE\) has no handoff file/);
    expect(() => buildSegmentPrompt(graph.comfyNodes!, stages[1]!.comfyNodes!, () => [])).toThrow(/node '6'/);
  });

  it("refuses a stage node the prompt does not have", () => {
    expect(() => buildSegmentPrompt(graph.comfyNodes!, ["7", "99"], twoFiles)).toThrow(/stage node '99' is not a node of the prompt/);
  });

  it("picks another id when the prompt already uses the one an added node would get", () => {
    const clashing = comfy({ ...txt2imgUpscale(), "gf-save-6-0": node("PreviewImage", { images: ["8", 0] }) });
    const stagesNow = stagesFor(clashing);
    const first = buildSegmentPrompt(clashing.comfyNodes!, stagesNow.find((s) => s.comfyNodes!.includes("6"))!.comfyNodes!, twoFiles);
    expect(first.outputs[0]!.saveNode).toBe("gf-save-6-0-2");
    expect(first.prompt["gf-save-6-0-2"]!.class_type).toBe("SaveImage");
  });

  it("returns the prompt unchanged given every node (whole-graph)", () => {
    const ids = graph.comfyNodes!.map((n) => n.id);
    const whole = buildSegmentPrompt(graph.comfyNodes!, ids, () => {
      throw new Error("whole-graph reads no handoff");
    });
    expect(whole).toEqual({ prompt: original, outputs: [], inputs: [], ownNodes: ids });
    expect(whole.prompt).toEqual(txt2imgUpscale());
  });
});

describe("masks, primitives and custom nodes crossing", () => {
  // Stage A: an image and its inverted alpha mask, a number and a size read from the image.
  // Stage B: an inpainting encode and a sampler that read them.
  const prompt: Prompt = {
    "1": node("CheckpointLoaderSimple", { ckpt_name: "sd_xl_base_1.0.safetensors" }),
    "2": node("LoadImage", { image: "photo.png" }),
    "3": node("InvertMask", { mask: ["2", 1] }),
    "4": node("PrimitiveInt", { value: 42 }),
    "5": node("GetImageSize", { image: ["2", 0] }),
    "6": node("MyCustomSeed", { salt: "x" }),
    "10": node("VAEEncodeForInpaint", { pixels: ["2", 0], vae: ["1", 2], mask: ["3", 0], grow_mask_by: 6 }),
    "11": node("CLIPTextEncode", { text: "a cat", clip: ["1", 1] }),
    "12": node("KSampler", { seed: ["4", 0], steps: ["5", 0], cfg: 7, sampler_name: "euler", scheduler: "normal", denoise: ["6", 0], model: ["1", 0], positive: ["11", 0], negative: ["11", 0], latent_image: ["10", 0] }),
    "13": node("VAEDecode", { samples: ["12", 0], vae: ["1", 2] }),
    "14": node("SaveImage", { images: ["13", 0], filename_prefix: "out" }),
    "15": node("PreviewImage", { images: ["3", 0] }),
  };
  const graph = comfy(prompt);
  const stageA = ["2", "3", "4", "5", "6"];
  const stageB = ["1", "10", "11", "12", "13", "14", "15"];

  it("hands a MASK over as MaskToImage → SaveImage, and an IMAGE as SaveImage, once each", () => {
    const a = buildSegmentPrompt(graph.comfyNodes!, stageA, twoFiles);
    expectValidSegmentPrompt(graph, stageA, a);
    expect(a.outputs).toEqual([
      { node: "2", output: 0, kind: "IMAGE", saveNode: "gf-save-2-0", prefix: "gf-handoff-2-0" },
      { node: "3", output: 0, kind: "MASK", saveNode: "gf-save-3-0", prefix: "gf-handoff-3-0" },
    ]);
    expect(a.prompt["gf-mask-to-image-3-0"]).toEqual({ class_type: "MaskToImage", inputs: { mask: ["3", 0] }, _meta: { title: "gf: MASK of node 3 output 0 as an image" } });
    expect(a.prompt["gf-save-3-0"]!.inputs).toEqual({ images: ["gf-mask-to-image-3-0", 0], filename_prefix: "gf-handoff-3-0" });
    expect(a.inputs).toEqual([]);
  });

  it("reads a MASK back through LoadImage → ImageToMask, copies primitives and custom nodes with their ancestors, never twice", () => {
    const asked: string[] = [];
    const b = buildSegmentPrompt(graph.comfyNodes!, stageB, (from, output) => {
      asked.push(`${from}/${output}`);
      return twoFiles(from, output);
    });
    const { copied } = expectValidSegmentPrompt(graph, stageB, b);
    // PrimitiveInt, GetImageSize (whose IMAGE input is the same handoff as pixels) and the custom node are copied.
    expect(copied).toBe(3);
    expect(b.ownNodes).toEqual([...stageB, "4", "5", "6"]);
    expect(asked.sort()).toEqual(["2/0", "3/0"]);
    expect(b.inputs.map((i) => [i.node, i.output, i.kind])).toEqual([
      ["2", 0, "IMAGE"],
      ["3", 0, "MASK"],
    ]);
    expect(b.prompt["10"]!.inputs.pixels).toEqual(["gf-batch-2-0-2", 0]);
    expect(b.prompt["5"]!.inputs.image).toEqual(["gf-batch-2-0-2", 0]);
    expect(b.prompt["10"]!.inputs.mask).toEqual(["gf-image-to-mask-3-0", 0]);
    expect(b.prompt["15"]!.inputs.images).toEqual(["gf-image-to-mask-3-0", 0]);
    expect(b.prompt["gf-image-to-mask-3-0"]).toEqual({ class_type: "ImageToMask", inputs: { image: ["gf-batch-3-0-2", 0], channel: "red" }, _meta: { title: "gf: MASK of node 3 output 0 back to a mask" } });
    expect(b.prompt["12"]!.inputs).toMatchObject({ seed: ["4", 0], steps: ["5", 0], denoise: ["6", 0] });
    expect(b.prompt["4"]).toEqual({ class_type: "PrimitiveInt", inputs: { value: 42 } });
    expect(b.prompt["6"]).toEqual({ class_type: "MyCustomSeed", inputs: { salt: "x" } });
    expect(Object.values(b.prompt).filter((n) => n.class_type === "LoadImage")).toHaveLength(4);
    expect(b.outputs).toEqual([]);
  });

  it("copies literal inputs, so that editing the result leaves the graph alone", () => {
    const withList = comfy({ "1": node("PrimitiveString", { value: "x", extra: [1, 2, 3] }), "2": node("SaveString", { text: ["1", 0] }) });
    const result = buildSegmentPrompt(withList.comfyNodes!, ["2"], twoFiles);
    (result.prompt["1"]!.inputs.extra as number[]).push(4);
    expect(withList.comfyNodes![0]!.inputs.extra).toEqual([1, 2, 3]);
  });
});

describe("whole-graph stages", () => {
  it("gives one stage with every node, one GPU, the largest segment's VRAM and the segments' work added up", () => {
    const graph = { ...comfy(txt2imgUpscale()), priority: "interactive" as const };
    const segments = stagesFor(graph);
    const [whole, ...rest] = stagesFor(graph, undefined, { comfyuiMode: "whole-graph" });
    expect(rest).toEqual([]);
    expect(whole).toEqual({
      id: WHOLE_GRAPH_STAGE_ID,
      needs: [],
      resources: { gpus: 1, vramMiB: Math.max(...segments.map((s) => s.resources.vramMiB)), model: "sd_xl_base_1.0.safetensors" },
      estimate: { durationS: 5.66, modelLoadS: 5.285 },
      comfyNodes: ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
      priority: "interactive",
    });
    expect(segments.every((s) => s.priority === "interactive")).toBe(true);
    expect(stagesFor(graph, undefined, { comfyuiMode: "segmented" })).toEqual(segments);
  });

  it("needs no GPU when no segment does", () => {
    const graph = comfy({ "1": node("PrimitiveString", { value: "hi" }), "2": node("SaveString", { text: ["1", 0] }) });
    const [whole] = stagesFor(graph, undefined, { comfyuiMode: "whole-graph" });
    expect(whole!.resources).toEqual({ gpus: 0, vramMiB: 0 });
  });
});

const comfyDir = sharedDataDir("comfyui");

describe.skipIf(!comfyDir)("every shared ComfyUI prompt", () => {
  const graphs = comfyDir
    ? readdirSync(comfyDir)
        .filter((f) => f.endsWith(".json"))
        .sort()
        .map((f) => parseWorkflowText(readFileSync(join(comfyDir, f), "utf8"), f))
    : [];

  it("gives every stage a valid prompt: images as SaveImage/LoadImage, primitives copied", () => {
    expect(graphs.length).toBeGreaterThanOrEqual(50);
    let stages = 0;
    let imagesIn = 0;
    let imagesOut = 0;
    let copied = 0;
    for (const graph of graphs) {
      for (const stage of stagesFor(graph)) {
        const result = buildSegmentPrompt(graph.comfyNodes!, stage.comfyNodes!, twoFiles);
        copied += expectValidSegmentPrompt(graph, stage.comfyNodes!, result).copied;
        imagesIn += result.inputs.length;
        imagesOut += result.outputs.length;
        stages++;
      }
    }
    // The set holds multi-segment prompts that hand images over and one that passes an INT across.
    expect(stages).toBeGreaterThan(graphs.length);
    expect(imagesIn).toBeGreaterThan(0);
    expect(imagesOut).toBe(imagesIn);
    expect(copied).toBeGreaterThan(0);
  });

  it("gives a valid prompt for every single node cut out alone (masks, GPU data and custom types crossing)", () => {
    let masks = 0;
    for (const graph of graphs) {
      for (const n of graph.comfyNodes!) {
        const result = buildSegmentPrompt(graph.comfyNodes!, [n.id], twoFiles);
        expectValidSegmentPrompt(graph, [n.id], result);
        masks += result.inputs.filter((i) => i.kind === "MASK").length + result.outputs.filter((o) => o.kind === "MASK").length;
      }
    }
    expect(masks).toBeGreaterThan(0);
  });

  it("returns every prompt unchanged given all its nodes, and schedules it as one stage", () => {
    for (const graph of graphs) {
      const ids = graph.comfyNodes!.map((n) => n.id);
      const whole = buildSegmentPrompt(graph.comfyNodes!, ids, () => undefined);
      expect(whole).toEqual({ prompt: apiPrompt(graph.comfyNodes!), outputs: [], inputs: [], ownNodes: ids });
      const stages = stagesFor(graph, undefined, { comfyuiMode: "whole-graph" });
      expect(stages).toHaveLength(1);
      expect(stages[0]!.comfyNodes).toEqual(ids);
    }
  });
});
