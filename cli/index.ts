import { Command, CommanderError } from "commander";
import { ValidationError } from "../runtime/config/errors.ts";
import { packageVersion } from "../runtime/config/package.ts";
import { registrationsFor } from "./commands/index.ts";
import { CliError, EXIT } from "./errors.ts";

export { CliError, EXIT } from "./errors.ts";

/** The program for `argv`, with the verbs it needs registered (see registrationsFor). */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command("gpufabric")
    .description("Declare GPU platforms for AI workflows, synthesize them for Kubernetes, and schedule workflow stages across GPUs.")
    .version(packageVersion())
    .exitOverride()
    .showHelpAfterError();
  for (const register of await registrationsFor(argv)) register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end through here with exit code 0.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof CliError) {
    process.stderr.write(`gpufabric: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ValidationError) {
    process.stderr.write(`gpufabric: ${err.message}\n`);
    return EXIT.usage;
  }
  process.stderr.write(`gpufabric: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.failure;
}
