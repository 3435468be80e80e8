import type { Command } from "commander";
import { relative } from "node:path";
import { scaffold } from "../init/scaffold.ts";
import { SCAFFOLD_NAMES } from "../init/templates.ts";

interface InitOptions {
  name?: string;
  force?: boolean;
  json?: boolean;
}

/** `gpufabric init [DIR]`: a new platform repo (package.json, cdktf.json, main.ts, a sample workflow, .gitignore, README). */
export function register(program: Command): void {
  program
    .command("init")
    .description("scaffold a platform repo: main.ts with a GPU pool, storage tier, network segment, tenant and agent, a sample workflow and a README")
    .argument("[dir]", "directory to create the repo in (new or empty)", ".")
    .option("--name <name>", "platform name, a DNS-1123 label (default: the directory's name)")
    .option("--force", "write into a non-empty directory, replacing files of the same name")
    .option("--json", "print what was written as JSON")
    .action((dir: string, options: InitOptions) => {
      const result = scaffold(dir, { name: options.name, force: options.force });
      const cd = relative(process.cwd(), result.dir);
      const next = [...(cd ? [`cd ${cd}`] : []), "npm install", `npx gpufabric validate workflows/${SCAFFOLD_NAMES.workflow}.yaml`, "npx gpufabric synth", "npx gpufabric dev --once"];
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ ...result, next }, null, 2)}\n`);
        return;
      }
      const lines = [
        `Created platform '${result.name}' in ${cd || "."}:`,
        ...result.files.map((f) => `  ${f}${result.overwritten.includes(f) ? "  (replaced)" : ""}`),
        "",
        "Next (see README.md):",
        ...next.map((step) => `  ${step}`),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
