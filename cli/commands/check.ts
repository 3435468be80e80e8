import type { Command } from "commander";
import { PACK_IDS } from "../../policies/model.ts";
import { FORMATS } from "../../policies/reporters/formats.ts";
import type { CheckCommandOptions } from "./check-run.ts";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `gpufabric check PATH`: runs compliance packs over a cdktf.out directory or any kubernetes-provider Terraform JSON. */
export function register(program: Command): void {
  program
    .command("check")
    .description("check a cdktf.out directory or *.tf.json against compliance packs; exit 1 when findings at --fail-on remain")
    .argument("<path>", "cdktf.out directory, a directory of *.tf.json, or one Terraform JSON file")
    .option("--pack <pack>", `pack to run, repeatable or comma-separated (${PACK_IDS.join(", ")}); default: all`, collect, [])
    .option("--format <format>", `report format: ${FORMATS.join(", ")}`, "text")
    .option("--json", "same as --format json")
    .option("--fail-on <level>", "error or warning: the lowest level that fails the check", "error")
    .option("--ack <file>", "acknowledgement file (JSON or YAML), repeatable", collect, [])
    .option(
      "--allow-region <spec>",
      "residency: CLASSIFICATION=region[,region], repeatable (e.g. phi=eu-west-1); default: the residency rules a CompliancePolicy wrote into the platform configs",
      collect,
      [],
    )
    .option("--allow-zone <spec>", "residency: CLASSIFICATION=zone[,zone], repeatable", collect, [])
    .option("--classification <class>", "classification of objects that carry no gpufabric.dev/data-classification label", "internal")
    .option("-o, --output <file>", "write the report to a file instead of stdout")
    // The checking itself (rules, reporters, schemas) is imported only when the verb runs: see check-run.ts.
    .action(async (path: string, options: CheckCommandOptions) => (await import("./check-run.ts")).runCheck(path, options));
}
