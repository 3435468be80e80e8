/** How long-running verbs (agent, worker, runner, dev) end: cleanly, on SIGTERM or SIGINT. Kept light: the runner imports it. */
/** Resolves once SIGTERM or SIGINT came and `close` (the agent's, a worker's, a runner's) has finished; `close` hears which signal came. */
export function untilSignalled(close: (signal: NodeJS.Signals) => Promise<void>): Promise<void> {
  return new Promise((done) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      void close(signal).then(done);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
