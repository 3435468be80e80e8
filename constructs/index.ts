export * from "./fabric-stack.ts";
export * from "./gpu-model.ts";
export * from "./gpu-sharing.ts";
export * from "./tenant.ts";
export * from "./network-segment.ts";
export * from "./gpu-pool.ts";
export * from "./storage-tier.ts";
export * from "./runtime-rules.ts";
