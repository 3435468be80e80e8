export * from "./types.ts";
export * from "./inventory.ts";
export * from "./dag.ts";
export * from "./planner.ts";
export * from "./prng.ts";
export * from "./scheduler.ts";
export * from "./from-graph.ts";
export * from "./from-config.ts";
