/** What of a prompt's /ws events is relayed, and how its errors read. */
import { describe, expect, it } from "vitest";
import { describeExecutionError, describeRefusal, isOutOfMemory, relayedData } from "../../../runtime/agent/executors/comfyui/events.ts";

const own = new Set(["3", "8"]);

describe("relayedData", () => {
  it("passes the prompt's own nodes' events without prompt_id, and drops the executor's gf- nodes", () => {
    expect(relayedData("executing", { node: "3", display_node: "3", prompt_id: "p" }, own)).toEqual({ node: "3", display_node: "3" });
    expect(relayedData("progress", { node: "3", value: 2, max: 4, prompt_id: "p" }, own)).toEqual({ node: "3", value: 2, max: 4 });
    expect(relayedData("executed", { node: "gf-save-8-0", output: {}, prompt_id: "p" }, own)).toBeUndefined();
    expect(relayedData("executing", { node: "gf-load-8-0-1", prompt_id: "p" }, own)).toBeUndefined();
    // The end of a segment is not the end of the client's prompt.
    expect(relayedData("executing", { node: null, prompt_id: "p" }, own)).toBeUndefined();
  });

  it("filters the node lists of execution_cached and progress_state", () => {
    expect(relayedData("execution_cached", { nodes: ["3", "gf-load-1-0-1", "99"], prompt_id: "p", timestamp: 1 }, own)).toEqual({ nodes: ["3"], timestamp: 1 });
    const state = relayedData("progress_state", { prompt_id: "p", nodes: { "8": { value: 1, max: 1, state: "running" }, "gf-save-8-0": { value: 0, max: 1, state: "running" } } }, own);
    expect(state).toEqual({ nodes: { "8": { value: 1, max: 1, state: "running" } } });
    expect(relayedData("progress_state", { prompt_id: "p", nodes: { "gf-save-8-0": {} } }, own)).toBeUndefined();
  });

  it("relays none of the events that are the executor's own business", () => {
    for (const type of ["status", "execution_start", "execution_success", "execution_error", "execution_interrupted"]) {
      expect(relayedData(type, { node: "3", prompt_id: "p" }, own)).toBeUndefined();
    }
  });
});

describe("error messages", () => {
  it("names node, class, exception type and the first line of its message; OOM is said as such", () => {
    expect(describeExecutionError({ node_id: "5", node_type: "VAEDecode", exception_type: "ValueError", exception_message: "bad tile\nmore" })).toEqual({
      message: "node 5 (VAEDecode) raised ValueError: bad tile",
      oom: false,
    });
    const oom = describeExecutionError({ node_id: "3", node_type: "KSampler", exception_type: "RuntimeError", exception_message: "CUDA out of memory. Tried to allocate 2 GiB" });
    expect(oom.oom).toBe(true);
    expect(oom.message).toMatch(/out of memory on the GPU/);
    expect(isOutOfMemory("torch.OutOfMemoryError", "")).toBe(true);
    expect(isOutOfMemory("RuntimeError", "shape mismatch")).toBe(false);
  });

  it("lists each node's validation errors from a 400", () => {
    const text = describeRefusal({
      error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: "" },
      node_errors: { "4": { class_type: "CheckpointLoaderSimple", errors: [{ type: "value_not_in_list", message: "Value not in list", details: "ckpt_name: 'x' not in []" }], dependent_outputs: ["9"] } },
    });
    expect(text).toBe("prompt_outputs_failed_validation: Prompt outputs failed validation; node 4 (CheckpointLoaderSimple): value_not_in_list: Value not in list (ckpt_name: 'x' not in [])");
  });
});
