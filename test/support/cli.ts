import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root: the CLI runs from there, as `npx gpufabric` would in a checkout. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../bin/gpufabric.mjs", import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `gpufabric` CLI in a child process and collects its exit code and output. */
export function runCli(...args: string[]): CliResult {
  const run = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", cwd: REPO_ROOT });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}
