/** The runtime agent: inventory, store, executors, and the service that composes them. */
export { startAgent, DEFAULT_BODY_LIMIT_BYTES, type AgentOptions, type RunningAgent } from "./service/agent.ts";
export { AgentLoop, type LoopObserver, type LoopOptions, type RunningStage } from "./service/loop.ts";
export { ApiError } from "./service/api-error.ts";
export { ROUTES } from "./api/routes.ts";
