import type { Command } from "commander";

/** Every verb of the CLI registers itself here, one module per verb. */
export const commands: ReadonlyArray<(program: Command) => void> = [];
