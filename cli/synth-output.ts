import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { CONFIG_MAP_KEY, parsePlatformConfig, type PlatformConfig } from "../runtime/config/index.ts";
import { rewriteSkipHint } from "../constructs/synth-errors.ts";

/** One stack of a cdktf.out directory: its Terraform JSON and the platform configs in it. */
export interface SynthesizedStack {
  readonly name: string;
  readonly file: string;
  readonly resourceCounts: Readonly<Record<string, number>>;
  readonly platformConfigs: readonly { readonly address: string; readonly config: PlatformConfig }[];
}

interface CdktfManifest {
  stacks: Record<string, { synthesizedStackPath: string }>;
}

type TerraformJson = { resource?: Record<string, Record<string, { metadata?: unknown; data?: Record<string, string> }>> };

/** Reads every stack of a cdktf output directory and validates each platform ConfigMap against the runtime's schema. */
export function readSynthOutput(outdir: string): SynthesizedStack[] {
  const manifestFile = join(outdir, "manifest.json");
  if (!existsSync(manifestFile)) {
    throw new Error(`${manifestFile} not found: synthesize first (npx cdktf synth), or pass the output directory`);
  }
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as CdktfManifest;
  return Object.entries(manifest.stacks).map(([name, entry]) => {
    const file = join(dirname(manifestFile), entry.synthesizedStackPath);
    return readStack(name, file);
  });
}

function readStack(name: string, file: string): SynthesizedStack {
  const tf = JSON.parse(readFileSync(file, "utf8")) as TerraformJson;
  const resourceCounts: Record<string, number> = {};
  const platformConfigs: { address: string; config: PlatformConfig }[] = [];
  for (const [type, byName] of Object.entries(tf.resource ?? {})) {
    resourceCounts[type] = Object.keys(byName).length;
    if (type !== "kubernetes_config_map_v1") continue;
    for (const [logicalName, body] of Object.entries(byName)) {
      const meta = (Array.isArray(body.metadata) ? body.metadata[0] : body.metadata) as { labels?: Record<string, string> } | undefined;
      if (meta?.labels?.["app.kubernetes.io/component"] !== "platform-config") continue;
      const address = `${type}.${logicalName}`;
      const text = body.data?.[CONFIG_MAP_KEY];
      if (typeof text !== "string") throw new Error(`${address} has no '${CONFIG_MAP_KEY}' key`);
      platformConfigs.push({ address, config: parsePlatformConfig(JSON.parse(text), `${file}: ${address}`) });
    }
  }
  return { name, file, resourceCounts, platformConfigs };
}

/** A readable account of what a synthesized platform declares. */
export function describeStacks(stacks: readonly SynthesizedStack[]): string {
  const lines: string[] = [];
  for (const stack of stacks) {
    const total = Object.values(stack.resourceCounts).reduce((a, b) => a + b, 0);
    lines.push(`stack ${stack.name}: ${total} Kubernetes resources in ${relative(process.cwd(), stack.file)}`);
    for (const [type, count] of Object.entries(stack.resourceCounts).sort()) lines.push(`  ${String(count).padStart(4)}  ${type}`);
    for (const { config } of stack.platformConfigs) {
      const d = config.deployment;
      lines.push(`  agent ${d.name} (namespace ${d.namespace}, image ${d.image})`);
      for (const pool of config.pools) {
        const sharing = pool.sharing.mode === "time-slicing" ? `time-slicing x${pool.sharing.replicas}` : pool.sharing.mode;
        lines.push(`    pool ${pool.name}: ${pool.nodes} nodes x ${pool.gpusPerNode} ${pool.gpu.model} (${pool.gpu.memoryMiB} MiB), ${sharing}, ${pool.devices.length} devices`);
      }
      for (const tier of config.tiers) {
        lines.push(`    tier ${tier.name} (${tier.class}): ${tier.storageClassName}, ${tier.encrypted ? "encrypted" : "NOT encrypted"}, retention ${tier.retentionDays ?? "none"} days`);
      }
      for (const t of config.tenants) lines.push(`    tenant ${t.name}: weight ${t.weight}, ${t.dataClassification}, ${t.isolation}`);
      for (const wf of config.workflows) lines.push(`    workflow ${wf.name} (${wf.format}, ${wf.priority}) for ${wf.tenants.join(", ")}`);
      if (config.runtimeRules.length) lines.push(`    runtime rules: ${config.runtimeRules.map((r) => r.id).join(", ")}`);
    }
  }
  return lines.join("\n");
}

/** The header Node prints for an uncaught error: `ValidationError: …`, `Error: Validation failed …`. */
const ERROR_HEADER = /^(ValidationError|Error): (.*)$/;
/** The first line of the source excerpt Node prints above it: `/path/file.ts:25`. */
const SOURCE_LINE = /^(?:\/|[A-Za-z]:\\|file:|node:).*:\d+$/;

/**
 * An app's stderr with a construct's props error or a failed cdktf validation left as its message: without the
 * source excerpt above it, the stack and properties below it, and with cdktf's skipValidation hint in the form
 * the App's constructor takes. Anything else (an app's bug) keeps its stack, which is what a person needs then.
 */
export function cleanAppStderr(text: string): string {
  const lines = text.split("\n");
  const at = lines.findIndex((line) => {
    const m = ERROR_HEADER.exec(line);
    return m !== null && (m[1] === "ValidationError" || /^(App-level validation|Validation) failed with the following errors:/.test(m[2]!));
  });
  if (at === -1) return text;
  let start = at;
  for (let i = at - 1; i >= Math.max(0, at - 8); i--) if (SOURCE_LINE.test(lines[i]!)) start = i;
  const end = lines.findIndex((line, i) => i > at && /^\s+at /.test(line));
  const message = [lines[at]!.replace(ERROR_HEADER, "$2"), ...lines.slice(at + 1, end === -1 ? undefined : end)].join("\n");
  return `${[...lines.slice(0, start), rewriteSkipHint(message)].join("\n").trimEnd()}\n`;
}
