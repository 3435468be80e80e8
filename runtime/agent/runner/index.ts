/** The runner: stage processes started in a container of their own, over a Unix socket. */
export { startRunner, type RunnerOptions, type RunningRunner } from "./server.ts";
export { RunnerClient, type RunnerHello } from "./client.ts";
export { RUNNER_PROTOCOL_VERSION } from "./protocol.ts";
