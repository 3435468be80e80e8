import type { Command } from "commander";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CliError, EXIT } from "../errors.ts";
import { cleanAppStderr, describeStacks, readSynthOutput } from "../synth-output.ts";

interface SynthOptions {
  app?: string;
  output: string;
  json?: boolean;
}

/** `gpufabric synth`: runs the cdktf app, validates every platform config it wrote, and says what it declares. */
export function register(program: Command): void {
  program
    .command("synth")
    .description("synthesize the platform app (cdktf.json's app), validate its platform configs and print what it declares")
    .option("--app <command>", "command that runs the cdktf app (default: the app in ./cdktf.json)")
    .option("-o, --output <dir>", "output directory", "cdktf.out")
    .option("--json", "print the summary as JSON")
    .action((options: SynthOptions) => {
      const app = options.app ?? appFromCdktfJson();
      const outdir = resolve(options.output);
      // The app's stderr is read, not passed through, so that a props error or failed validation is shown as
      // its message rather than inside Node's stack trace (see cleanAppStderr).
      const result = spawnSync(app, {
        shell: true,
        stdio: ["ignore", options.json ? "ignore" : "inherit", "pipe"],
        env: { ...process.env, CDKTF_OUTDIR: outdir },
        encoding: "utf8",
        maxBuffer: 64 * 1024 * 1024,
      });
      const stderr = result.stderr ?? "";
      if (result.status !== 0) {
        process.stderr.write(cleanAppStderr(stderr));
        throw new CliError(`'${app}' failed (exit ${result.status ?? result.signal}): see the error above`, EXIT.failure);
      }
      process.stderr.write(stderr);
      const stacks = readSynthOutput(outdir);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ outdir, stacks }, null, 2)}\n`);
      } else {
        process.stdout.write(`${describeStacks(stacks)}\n\nTerraform JSON written to ${options.output}/. Deploy with: npx cdktf deploy\n`);
      }
    });
}

export function appFromCdktfJson(): string {
  if (!existsSync("cdktf.json")) throw new CliError("no cdktf.json in this directory: run from your platform repository or pass --app", EXIT.usage);
  const app = (JSON.parse(readFileSync("cdktf.json", "utf8")) as { app?: unknown }).app;
  if (typeof app !== "string" || !app) throw new CliError("cdktf.json has no 'app' command: add one, e.g. \"npx tsx main.ts\"", EXIT.usage);
  return app;
}
