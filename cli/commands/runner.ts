import type { Command } from "commander";
import { resolve } from "node:path";
import { pino } from "pino";
import { startRunner } from "../../runtime/agent/runner/index.ts";
import { untilSignalled } from "../signals.ts";

/**
 * `gpufabric runner`: the container of an agent's pod where stages run. It holds no Secret: the agent
 * (which holds them) asks it over a Unix socket in a volume the two share to start, signal and stop
 * stage processes. Serves until SIGTERM or SIGINT.
 */
export function register(program: Command): void {
  program
    .command("runner")
    .description("start stage processes for the agent of this pod, in a container that holds no Secret (Kubernetes: the runner container)")
    .option("--socket <path>", "Unix socket in the volume shared with the agent's container", "/var/run/gpufabric-runner/runner.sock")
    .action(async (options: { socket: string }) => {
      const logger = pino({ base: { service: "gpufabric-runner" } });
      const runner = await startRunner({ socket: resolve(options.socket), log: (level, message, fields) => logger[level](fields ?? {}, message) });
      await untilSignalled(() => runner.close());
    });
}
