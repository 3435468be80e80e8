/**
 * Synthesize a stack and look into the Terraform JSON: resources by type, by `metadata.name`
 * (and namespace), with their configuration as cdktf wrote it (snake_case, blocks as arrays).
 */
import { Testing, type TerraformStack } from "cdktf";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

// Terraform JSON is untyped by nature; tests read it as plain data.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface SynthResource {
  /** e.g. `kubernetes_namespace_v1`. */
  readonly type: string;
  /** cdktf's logical id of the resource within the stack. */
  readonly logicalId: string;
  readonly config: Json;
}

export class SynthesizedStack {
  constructor(readonly json: Json) {}

  /** Every resource of `type`, in declaration order. */
  resources(type: string): SynthResource[] {
    const byId: Record<string, Json> = this.json.resource?.[type] ?? {};
    return Object.entries(byId).map(([logicalId, config]) => ({ type, logicalId, config }));
  }

  /** Every resource of every type. */
  allResources(): SynthResource[] {
    return Object.keys(this.json.resource ?? {}).flatMap((type) => this.resources(type));
  }

  /** Resources of `type` whose `metadata.name` is `name` (and whose namespace is `namespace` when given). */
  named(type: string, name: string, namespace?: string): SynthResource[] {
    return this.resources(type).filter((r) => {
      const meta = metadataOf(r);
      return meta?.name === name && (namespace === undefined || meta?.namespace === namespace);
    });
  }

  /** The one resource of `type` named `name`; throws listing the names present when there is not exactly one. */
  find(type: string, name: string, namespace?: string): SynthResource {
    const found = this.named(type, name, namespace);
    if (found.length !== 1) {
      const present = this.resources(type).map((r) => `${metadataOf(r)?.namespace ? `${metadataOf(r).namespace}/` : ""}${metadataOf(r)?.name}`);
      throw new Error(
        `expected one ${type} named '${name}'${namespace ? ` in namespace '${namespace}'` : ""}, found ${found.length}; present: ${present.join(", ") || "none"}`,
      );
    }
    return found[0]!;
  }

  /** `metadata.name` of every resource of `type`. */
  names(type: string): string[] {
    return this.resources(type).map((r) => metadataOf(r)?.name as string);
  }

  /** The kubernetes provider blocks of the stack. */
  providers(): Json[] {
    const p = this.json.provider?.kubernetes;
    return Array.isArray(p) ? p : p ? [p] : [];
  }
}

/** `metadata` of a resource (cdktf writes single blocks as objects). */
export function metadataOf(resource: SynthResource): Json {
  const meta = resource.config.metadata;
  return Array.isArray(meta) ? meta[0] : meta;
}

/** Synthesizes `stack` in memory with `Testing.synth` (cdktf's validations included). */
export function synth(stack: TerraformStack): SynthesizedStack {
  return new SynthesizedStack(JSON.parse(Testing.synth(stack, true)));
}

/** Synthesizes the whole app of `stack` to disk with `Testing.fullSynth`, then reads this stack's `cdk.tf.json`. */
export function fullSynth(stack: TerraformStack): SynthesizedStack {
  const outdir = Testing.fullSynth(stack);
  const stacksDir = join(outdir, "stacks");
  const dir = readdirSync(stacksDir).find((d) => d === stack.node.id) ?? readdirSync(stacksDir)[0];
  if (!dir) throw new Error(`no stack was synthesized under ${stacksDir}`);
  return new SynthesizedStack(JSON.parse(readFileSync(join(stacksDir, dir, "cdk.tf.json"), "utf8")));
}
