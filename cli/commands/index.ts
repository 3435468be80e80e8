import type { Command } from "commander";

type Register = (program: Command) => void;

/**
 * Every verb of the CLI, one module per verb, loaded on demand: a run of `gpufabric check` should not pay
 * for importing the agent, cdktf or the simulator. The order is the order of `gpufabric --help`.
 */
export const VERBS: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<{ register: Register }> }> = [
  { name: "init", load: () => import("./init.ts") },
  { name: "synth", load: () => import("./synth.ts") },
  { name: "validate", load: () => import("./validate.ts") },
  { name: "check", load: () => import("./check.ts") },
  { name: "simulate", load: () => import("./simulate.ts") },
  { name: "plan", load: () => import("./plan.ts") },
  { name: "keys", load: () => import("./keys.ts") },
  { name: "tokens", load: () => import("./tokens.ts") },
  { name: "audit", load: () => import("./audit.ts") },
  { name: "agent", load: () => import("./agent.ts") },
  { name: "runner", load: () => import("./runner.ts") },
  { name: "worker", load: () => import("./worker.ts") },
  { name: "dev", load: () => import("./dev.ts") },
  { name: "comfyui", load: () => import("./comfyui.ts") },
  { name: "runs", load: () => import("./runs.ts") },
  { name: "profile", load: () => import("./profile.ts") },
];

/** The register functions for a command line: only its verb's when it names one, else every verb's (help, typos). */
export async function registrationsFor(argv: readonly string[]): Promise<Register[]> {
  const verb = argv.slice(2).find((arg) => !arg.startsWith("-"));
  const named = VERBS.find((v) => v.name === verb);
  const chosen = named ? [named] : VERBS;
  return (await Promise.all(chosen.map((v) => v.load()))).map((m) => m.register);
}
