/** The `comfyui` executor: ComfyUI servers pinned to GPUs, a client for them, and the attempts run on them. */
export * from "./contract.ts";
export { ComfyClient, ComfyHttpError, type ComfyFrame, type HistoryEntry, type QueuedPrompt } from "./client.ts";
export { ComfyServer, ComfyServerPool, comfyUiForInventory, type PoolGpu, type ServerPoolOptions } from "./server-pool.ts";
export { ComfyUiExecutor, uploadPrefix, type ComfyUiExecutorOptions } from "./executor.ts";
export { missingOnServer } from "./model-check.ts";
export { Residency, modelsOfNodes } from "./residency.ts";
export { describeExecutionError, describeRefusal, isOutOfMemory, relayedData } from "./events.ts";
export { artifactNameOf, fetchOutputs } from "./outputs.ts";
