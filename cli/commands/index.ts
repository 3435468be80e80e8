import { Command, Help } from "commander";
import { existsSync, readFileSync } from "node:fs";

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

/** What `gpufabric --help` shows of one verb, as its module registers it. */
export interface VerbSummary {
  readonly name: string;
  readonly aliases: readonly string[];
  /** The verb's line in the list of commands, e.g. "check [options] <path>". */
  readonly term: string;
  readonly description: string;
}

/**
 * The file the build writes beside the compiled module (scripts/build.mjs): every verb's summary, so that
 * `gpufabric --help` and a mistyped verb list the verbs without importing them (fastify, cdktf: seconds).
 * The sources have none and load every verb instead.
 */
export const SUMMARIES_FILE = new URL("./verbs.json", import.meta.url);

/** Every verb's summary, read from its registration (the build records them in SUMMARIES_FILE). */
export async function verbSummaries(): Promise<VerbSummary[]> {
  const program = new Command("gpufabric");
  for (const v of VERBS) (await v.load()).register(program);
  const help = program.createHelp();
  return program.commands.map((cmd) => ({ name: cmd.name(), aliases: cmd.aliases(), term: help.subcommandTerm(cmd), description: help.subcommandDescription(cmd) }));
}

/** Registers each verb by its summary alone: enough for the list of commands and for commander's did-you-mean. */
export function registerSummaries(summaries: readonly VerbSummary[]): Register {
  return (program) => {
    for (const s of summaries) program.command(s.name).aliases(s.aliases).description(s.description);
    const terms = new Map(summaries.map((s) => [s.name, s.term]));
    const base = new Help();
    program.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd.name()) ?? base.subcommandTerm(cmd) });
  };
}

function recordedSummaries(): VerbSummary[] | undefined {
  return existsSync(SUMMARIES_FILE) ? (JSON.parse(readFileSync(SUMMARIES_FILE, "utf8")) as VerbSummary[]) : undefined;
}

/**
 * The register functions for a command line: only its verb's when it names one (also as `help VERB`);
 * else (help, a typo) every verb's summary when the build recorded them, or every verb's module.
 */
export async function registrationsFor(argv: readonly string[], summaries = recordedSummaries()): Promise<Register[]> {
  const words = argv.slice(2).filter((arg) => !arg.startsWith("-"));
  const verb = words[0] === "help" ? words[1] : words[0];
  const named = VERBS.find((v) => v.name === verb);
  if (named) return [(await named.load()).register];
  if (summaries) return [registerSummaries(summaries)];
  return (await Promise.all(VERBS.map((v) => v.load()))).map((m) => m.register);
}
