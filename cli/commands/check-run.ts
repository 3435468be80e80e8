/**
 * What `gpufabric check` does once its options are parsed: loaded only when the verb runs, so that
 * `gpufabric check --help` does not import the rules, the reporters and the config schemas.
 */
import { writeFileSync } from "node:fs";
import { packageVersion } from "../../runtime/config/package.ts";
import { DataClassificationSchema, type DataClassification } from "../../runtime/config/schema.ts";
import type { FieldIssue } from "../../runtime/config/errors.ts";
import {
  FORMATS,
  PACK_IDS,
  RuleContext,
  allowedRegionsFromRuntimeRules,
  hasFailures,
  isPackId,
  loadAcknowledgementFile,
  loadTerraformResources,
  render,
  runChecks,
  type Format,
  type PackId,
} from "../../policies/index.ts";
import { didYouMean } from "../../runtime/graph/suggest.ts";
import { CliError, EXIT } from "../errors.ts";

export interface CheckCommandOptions {
  pack: string[];
  format: string;
  json?: boolean;
  failOn: string;
  ack?: string[];
  allowRegion: string[];
  allowZone: string[];
  classification?: string;
  output?: string;
}

/** `CLASS=A,B` → { CLASS: [A, B] }, naming the option at fault when malformed. */
function parsePlaces(option: string, specs: readonly string[], issues: FieldIssue[]): Partial<Record<DataClassification, string[]>> {
  const out: Partial<Record<DataClassification, string[]>> = {};
  for (const spec of specs) {
    const [cls, list] = spec.split("=", 2);
    const parsed = DataClassificationSchema.safeParse(cls);
    if (!parsed.success || !list) {
      issues.push({ field: option, message: `'${spec}' must look like CLASSIFICATION=place[,place] with a classification among ${DataClassificationSchema.options.join(", ")}` });
      continue;
    }
    out[parsed.data] = [...(out[parsed.data] ?? []), ...list.split(",").map((s) => s.trim()).filter(Boolean)];
  }
  return out;
}

/** Residency the synthesized platform configs already carry as run-time rules, so a check of cdktf.out matches the synth-time one. */
function residencyOfPlatformConfigs(resources: ConstructorParameters<typeof RuleContext>[0]): Partial<Record<DataClassification, string[]>> {
  const configs = new RuleContext(resources).platformConfigs();
  return allowedRegionsFromRuntimeRules(configs.flatMap((s) => s.config?.runtimeRules ?? []));
}

/** Runs the packs over `path` and writes the report; sets the exit code when findings at --fail-on remain. */
export function runCheck(path: string, options: CheckCommandOptions): void {
  const issues: FieldIssue[] = [];
  const packIds = options.pack.flatMap((p) => p.split(",")).map((p) => p.trim()).filter(Boolean);
  for (const p of packIds) if (!isPackId(p)) issues.push({ field: "--pack", message: `unknown pack '${p}'${didYouMean(p, PACK_IDS)} (known packs: ${PACK_IDS.join(", ")})` });
  const format = options.json ? "json" : options.format;
  if (!(FORMATS as readonly string[]).includes(format)) issues.push({ field: "--format", message: `unknown format '${format}'${didYouMean(format, FORMATS)} (use one of ${FORMATS.join(", ")})` });
  if (options.failOn !== "error" && options.failOn !== "warning") issues.push({ field: "--fail-on", message: `'${options.failOn}' must be 'error' or 'warning'` });
  const classification = DataClassificationSchema.safeParse(options.classification);
  if (!classification.success) issues.push({ field: "--classification", message: `'${options.classification}' must be one of ${DataClassificationSchema.options.join(", ")}` });
  const allowedRegions = parsePlaces("--allow-region", options.allowRegion, issues);
  const allowedZones = parsePlaces("--allow-zone", options.allowZone, issues);
  // A usage error (exit 2) that names each option at fault, not a validation of "gpufabric check options".
  if (issues.length > 0) throw new CliError(`check: invalid option${issues.length > 1 ? "s" : ""}:\n${issues.map((i) => `  - ${i.field}: ${i.message}`).join("\n")}`, EXIT.usage);

  const acknowledgements = (options.ack ?? []).flatMap((file) => loadAcknowledgementFile(file));
  const resources = loadTerraformResources(path);
  const selected: PackId[] = packIds.length > 0 ? [...new Set(packIds as PackId[])] : [...PACK_IDS];
  const regions = options.allowRegion.length > 0 ? allowedRegions : residencyOfPlatformConfigs(resources);
  const report = runChecks(resources, {
    packs: selected,
    residency: { allowedRegions: regions, allowedZones },
    defaultClassification: classification.data,
    acknowledgements,
  });
  const out = render(report, format as Format, packageVersion());
  if (options.output) writeFileSync(options.output, `${out}\n`);
  else process.stdout.write(`${out}\n`);
  if (hasFailures(report, options.failOn as "error" | "warning")) process.exitCode = EXIT.failure;
}
