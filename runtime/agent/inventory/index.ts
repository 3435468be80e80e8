/** GPU inventory: discovery with nvidia-smi, from the ComfyUI server containers (comfyui.image), or simulated from the pool; and VRAM sampling. */
export * from "./types.ts";
export { discoverGpus, simulatedInventory, InventoryError, GPU_QUERY_ARGS, GPU_LIST_ARGS, type DiscoverOptions, type Inventory } from "./discover.ts";
export { comfyUiServersInventory, type ComfyUiServersOptions } from "./comfyui-servers.ts";
export {
  parseGpuQuery,
  parseGpuList,
  parseComputeApps,
  migProfileMemoryMiB,
  type GpuQueryRow,
  type GpuListEntry,
  type MigListEntry,
  type ComputeAppRow,
} from "./nvidia-smi-parse.ts";
export { NvidiaSmiVramSampler, sampleMemoryUsed, attributeVram, processGroupOf, COMPUTE_APPS_ARGS, type MemorySample } from "./vram-sampler.ts";
export { findOnPath, runCommand, type CommandResult } from "./command.ts";
