/** The checks made before a prompt is sent, over /object_info as ComfyUI writes it. */
import { describe, expect, it } from "vitest";
import { missingOnServer } from "../../../runtime/agent/executors/comfyui/model-check.ts";

const info = {
  CheckpointLoaderSimple: { input: { required: { ckpt_name: [["sd15.safetensors", "sdxl.safetensors"]] } } },
  // Schema-defined nodes of newer servers describe a combo as ["COMBO", {options}].
  LoraLoaderModelOnly: { input: { required: { model: ["MODEL"], lora_name: ["COMBO", { options: ["detail.safetensors"] }], strength_model: ["FLOAT", { default: 1 }] } } },
  LoadImage: { input: { required: { image: [["a.png"], { image_upload: true }] } } },
  KSampler: { input: { required: { sampler_name: [["euler", "dpmpp_2m"]] }, optional: { scheduler: [["normal", "karras"]] } } },
};

describe("missingOnServer", () => {
  it("accepts a prompt whose classes exist and whose combo inputs hold one of their choices (links and uploads unchecked)", () => {
    const prompt = {
      "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sdxl.safetensors" } },
      "2": { class_type: "LoraLoaderModelOnly", inputs: { model: ["1", 0], lora_name: "detail.safetensors", strength_model: 0.5 } },
      "3": { class_type: "LoadImage", inputs: { image: "uploaded-later.png" } },
      "4": { class_type: "KSampler", inputs: { sampler_name: ["9", 0], scheduler: "karras" } },
    };
    expect(missingOnServer(prompt, info, "S")).toEqual([]);
  });

  it("names each missing model, choice and node class with its node id and class", () => {
    const prompt = {
      "1": { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "flux.safetensors" } },
      "2": { class_type: "LoraLoaderModelOnly", inputs: { model: ["1", 0], lora_name: "gone.safetensors" } },
      "4": { class_type: "KSampler", inputs: { sampler_name: "euler", scheduler: "exponential" } },
      "5": { class_type: "SuperResolve", inputs: {} },
    };
    expect(missingOnServer(prompt, info, "the server")).toEqual([
      "node 1 (CheckpointLoaderSimple): ckpt_name 'flux.safetensors' is not on the server (it has: sd15.safetensors, sdxl.safetensors)",
      "node 2 (LoraLoaderModelOnly): lora_name 'gone.safetensors' is not on the server (it has: detail.safetensors)",
      "node 4 (KSampler): scheduler 'exponential' is not on the server (it has: normal, karras)",
      "node 5: class 'SuperResolve' is not installed on the server (a custom node missing there?)",
    ]);
  });
});
