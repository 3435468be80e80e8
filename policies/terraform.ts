/**
 * Reads Terraform JSON (cdktf's `cdk.tf.json` or any hand-written `*.tf.json`) into normalized
 * resources. Terraform accepts a nested block either as an object or as an array of objects; rules
 * should not care, so single blocks become objects and known list blocks become arrays.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { z } from "zod";
import { ValidationError, issuesFromZod, type FieldIssue } from "../runtime/config/errors.ts";
import type { Acknowledgement, Resource } from "./model.ts";

/** Nested blocks of the kubernetes provider that repeat; every other nested block appears at most once. */
const LIST_BLOCKS = new Set([
  "container",
  "init_container",
  "ephemeral_container",
  "volume",
  "volume_mount",
  "volume_device",
  "toleration",
  "port",
  "env",
  "env_from",
  "ingress",
  "egress",
  "from",
  "to",
  "rule",
  "subject",
  "match_expressions",
  "match_expression",
  "match_fields",
  "node_selector_term",
  "preferred_during_scheduling_ignored_during_execution",
  "required_during_scheduling_ignored_during_execution",
  "host_aliases",
  "image_pull_secrets",
  "topology_spread_constraint",
  "allowed_topologies",
  "match_label_expressions",
  "items",
  "readiness_gate",
  "aggregation_rule",
  "cluster_role_selectors",
]);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Normalizes the value found under `key`: unwraps single blocks written as one-element arrays, wraps list
 * blocks written as objects. `inPlace` rewrites the objects it is given (for JSON just parsed, saving a copy).
 */
export function normalizeBlock(key: string, value: unknown, inPlace = false): unknown {
  if (Array.isArray(value)) {
    if (!LIST_BLOCKS.has(key) && value.length === 1 && isPlainObject(value[0])) return normalizeObject(value[0], inPlace);
    return value.map((item) => (isPlainObject(item) ? normalizeObject(item, inPlace) : item));
  }
  if (isPlainObject(value)) {
    const normalized = normalizeObject(value, inPlace);
    return LIST_BLOCKS.has(key) ? [normalized] : normalized;
  }
  return value;
}

function normalizeObject(obj: Record<string, unknown>, inPlace: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = inPlace ? obj : {};
  for (const key in obj) out[key] = normalizeBlock(key, obj[key], inPlace);
  return out;
}

const AckSchema = z
  .object({
    ruleId: z.string().regex(/^GF-[A-Z]+-\d{3}$/, "must be a rule id such as GF-POD-001 (see docs/policies.md)"),
    reason: z.string().trim().min(10, "must explain the acknowledgement in at least 10 characters"),
    source: z.string().min(1).optional(),
  })
  .strict();

const ResourceMetadataSchema = z
  .object({
    metadata: z.object({ path: z.string().optional() }).passthrough().optional(),
    gpufabric: z.object({ acknowledgements: z.array(AckSchema).optional() }).passthrough().optional(),
  })
  .passthrough();

/** Key under which cdktf (and gpufabric's acknowledgements) keep metadata inside a resource block. */
export const METADATA_KEY = "//";

/**
 * Turns one Terraform JSON document into resources. `file` is used in messages and reports; `inPlace`
 * lets normalization rewrite `doc` instead of copying it (for a document nobody else holds).
 */
export function resourcesFromTerraformJson(doc: unknown, file?: string, inPlace = false): Resource[] {
  const where = file ?? "Terraform JSON";
  if (!isPlainObject(doc)) throw new ValidationError(where, [{ field: "(root)", message: "must be a JSON object with a `resource` key, as Terraform writes it" }]);
  const issues: FieldIssue[] = [];
  const resources: Resource[] = [];
  for (const [typeBlock, typeIndex] of asBlockList(doc.resource)) {
    if (!isPlainObject(typeBlock)) {
      issues.push({ field: `resource${typeIndex}`, message: "must be an object keyed by resource type" });
      continue;
    }
    for (const [type, byName] of Object.entries(typeBlock)) {
      if (type.startsWith("//")) continue;
      for (const [nameBlock, nameIndex] of asBlockList(byName)) {
        if (!isPlainObject(nameBlock)) {
          issues.push({ field: `resource.${type}${nameIndex}`, message: "must be an object keyed by resource name" });
          continue;
        }
        for (const [name, body] of Object.entries(nameBlock)) {
          if (name.startsWith("//")) continue;
          const block = Array.isArray(body) && body.length === 1 ? body[0] : body;
          if (!isPlainObject(block)) {
            issues.push({ field: `resource.${type}.${name}`, message: "must be an object of attributes and blocks" });
            continue;
          }
          const { [METADATA_KEY]: meta, ...attrs } = block;
          const parsedMeta = meta === undefined ? { success: true as const, data: {} as z.infer<typeof ResourceMetadataSchema> } : ResourceMetadataSchema.safeParse(meta);
          if (!parsedMeta.success) {
            for (const issue of issuesFromZod(parsedMeta.error)) issues.push({ field: `resource.${type}.${name}["//"].${issue.field}`, message: issue.message });
            continue;
          }
          const constructPath = parsedMeta.data.metadata?.path;
          const acknowledgements: Acknowledgement[] = (parsedMeta.data.gpufabric?.acknowledgements ?? []).map((a) => ({
            ruleId: a.ruleId,
            reason: a.reason.trim(),
            source: a.source ?? constructPath ?? `${type}.${name}`,
          }));
          resources.push({
            type,
            name,
            address: `${type}.${name}`,
            ...(constructPath ? { constructPath } : {}),
            ...(file ? { file } : {}),
            attributes: normalizeObject(attrs, inPlace),
            acknowledgements,
          });
        }
      }
    }
  }
  if (issues.length > 0) throw new ValidationError(where, issues);
  return resources;
}

/** Terraform JSON lets a labelled block level be an object or an array of objects. */
function asBlockList(value: unknown): [unknown, string][] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.map((v, i) => [v, `[${i}]`]);
  return [[value, ""]];
}

/** Every `*.tf.json` under `path` (or `path` itself when it is a file), sorted for stable reports. */
export function terraformJsonFiles(path: string): string[] {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new ValidationError("check PATH", [{ field: "PATH", message: `'${path}' does not exist: pass a cdktf.out directory or a *.tf.json file` }]);
  }
  if (stats.isFile()) return [path];
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name === ".terraform") continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith(".tf.json")) found.push(full);
    }
  };
  walk(path);
  if (found.length === 0) {
    throw new ValidationError("check PATH", [{ field: "PATH", message: `no *.tf.json under '${path}': run \`cdktf synth\` first or pass a Terraform JSON file` }]);
  }
  return found.sort();
}

/** Reads every Terraform JSON file under `path` into resources. */
export function loadTerraformResources(path: string, base = process.cwd()): Resource[] {
  const resources: Resource[] = [];
  for (const file of terraformJsonFiles(path)) {
    const shown = relative(base, file) || file;
    let doc: unknown;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
      doc = JSON.parse(text);
    } catch (err) {
      throw new ValidationError(shown, [{ field: "(root)", message: `not valid JSON: ${(err as Error).message}` }]);
    }
    const fromFile = resourcesFromTerraformJson(doc, shown, true);
    const lines = locateResources(text, fromFile);
    resources.push(...fromFile.map((r, i) => (lines[i] ? { ...r, line: lines[i] } : r)));
  }
  return resources;
}

/**
 * Best-effort line of each resource's block (`"name": {`) in the file text, for reports that point into
 * the file (SARIF regions). Searches forward only, type by type, so the whole pass reads the text once
 * per resource type; a resource it cannot place gets no line.
 */
export function locateResources(text: string, resources: readonly Resource[]): (number | undefined)[] {
  const keyAt = (key: string, from: number): number => {
    const quoted = JSON.stringify(key);
    for (let at = text.indexOf(quoted, from); at !== -1; at = text.indexOf(quoted, at + 1)) {
      let next = at + quoted.length;
      while (next < text.length && /\s/.test(text[next]!)) next++;
      if (text[next] !== ":") continue;
      next++;
      while (next < text.length && /\s/.test(text[next]!)) next++;
      // A block opens here; a label or attribute of the same name has a scalar value.
      if (text[next] === "{" || text[next] === "[") return at;
    }
    return -1;
  };
  const lineStarts: number[] = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const lineOf = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const cursor = new Map<string, number>();
  const resourceKey = keyAt("resource", 0);
  return resources.map((r) => {
    let from = cursor.get(r.type);
    if (from === undefined) {
      from = keyAt(r.type, Math.max(resourceKey, 0));
      if (from === -1) return undefined;
    }
    const at = keyAt(r.name, from);
    if (at === -1) return undefined;
    cursor.set(r.type, at + 1);
    return lineOf(at);
  });
}
