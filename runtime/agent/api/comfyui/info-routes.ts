/**
 * ComfyUI's introspection: `/object_info` (from the real servers when there are any), `/models`,
 * `/embeddings`, `/extensions`, `/features` and `/system_stats` (the GPUs this agent schedules).
 */
import { freemem, totalmem } from "node:os";
import type { FastifyInstance } from "fastify";
import { OUTPUT_TYPES } from "../../../graph/cost/output-types.ts";
import { ApiError } from "../../service/api-error.ts";
import type { ComfyApi } from "./context.ts";
import { MAX_UPLOAD_BYTES } from "./ws-hub.ts";

const MIB = 1024 * 1024;
const VERSION = "gpufabric";

/**
 * Without a ComfyUI server (stages simulated), the classes the cost model knows, with their outputs:
 * enough for a client to see what the fabric can plan, marked as coming from no server.
 */
function plannedObjectInfo(): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  for (const [name, outputs] of Object.entries(OUTPUT_TYPES)) {
    info[name] = {
      input: { required: {} },
      input_order: { required: [] },
      output: outputs,
      output_is_list: outputs.map(() => false),
      output_name: outputs,
      name,
      display_name: name,
      description: "known to gpufabric's planner; no ComfyUI server is configured, so its inputs are not listed",
      python_module: "nodes",
      category: "gpufabric/planned",
      output_node: outputs.length === 0,
    };
  }
  return info;
}

export function registerInfoRoutes(app: FastifyInstance, api: ComfyApi): void {
  const { parts } = api;
  const objectInfo = async () => (await parts.comfy?.introspection?.objectInfo().catch(() => null)) ?? plannedObjectInfo();
  const models = async () => (await parts.comfy?.introspection?.models().catch(() => null)) ?? {};

  app.get("/object_info", async () => objectInfo());
  app.get<{ Params: { nodeClass: string } }>("/object_info/:nodeClass", async (request) => {
    const info = await objectInfo();
    const name = request.params.nodeClass;
    return Object.hasOwn(info, name) ? { [name]: info[name] } : {};
  });
  app.get("/models", async () => Object.keys(await models()));
  app.get<{ Params: { folder: string } }>("/models/:folder", async (request) => {
    const all = await models();
    const list = Object.hasOwn(all, request.params.folder) ? all[request.params.folder] : undefined;
    if (list === undefined) throw new ApiError(404, "not-found", `no model folder '${request.params.folder.slice(0, 100)}'`, "folder");
    return list;
  });
  app.get("/embeddings", async () => ((await models()).embeddings ?? []).map((name) => name.replace(/\.[^.]+$/, "")));
  app.get("/extensions", async () => []);
  app.get("/features", async () => ({ supports_preview_metadata: true, max_upload_size: MAX_UPLOAD_BYTES }));
  app.get("/system_stats", async () => {
    return {
      system: {
        os: process.platform,
        ram_total: totalmem(),
        ram_free: freemem(),
        comfyui_version: VERSION,
        required_frontend_version: "",
        python_version: "",
        pytorch_version: "",
        embedded_python: false,
        argv: [],
      },
      // Every GPU this agent schedules, as ComfyUI lists torch devices (bytes): free is what nothing of ours holds.
      devices: parts.devices.map((d) => {
        const total = d.memoryMiB * MIB;
        const free = Math.max(0, (d.memoryMiB - d.memoryUsedMiB) * MIB);
        return { name: `${d.id}: ${d.name}`, type: "cuda", index: d.index, vram_total: total, vram_free: free, torch_vram_total: total, torch_vram_free: free };
      }),
    };
  });
}
