/** Indexes over one set of resources, built once per check and shared by every rule. */
import { CONFIG_MAP_KEY } from "../runtime/config/index.ts";
import { issuesFromZod } from "../runtime/config/errors.ts";
import { PlatformConfigSchema, type DataClassification } from "../runtime/config/schema.ts";
import { get, isObj, kindOf, namespaceOf } from "./kubernetes.ts";
import type { PlatformConfigSource, Residency, Resource, RuleContextView } from "./model.ts";

const REFERENCE = /^\$\{([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+|\[\d+\])*)\}$/;

export class RuleContext implements RuleContextView {
  readonly residency: Residency;
  readonly defaultClassification: DataClassification;
  private readonly byKind = new Map<string, Resource[]>();
  private readonly byAddress = new Map<string, Resource>();
  private configs: PlatformConfigSource[] | undefined;
  private readonly byKindAndNamespace = new Map<string, Map<string, Resource[]>>();
  private readonly memos = new Map<string, unknown>();

  constructor(
    readonly resources: readonly Resource[],
    options: { residency?: Residency; defaultClassification?: DataClassification } = {},
  ) {
    this.residency = options.residency ?? { allowedRegions: {}, allowedZones: {} };
    this.defaultClassification = options.defaultClassification ?? "internal";
    for (const r of resources) {
      this.byAddress.set(r.address, r);
      const kind = kindOf(r.type);
      if (!kind) continue;
      let list = this.byKind.get(kind);
      if (!list) this.byKind.set(kind, (list = []));
      list.push(r);
    }
  }

  ofKind(kind: string): readonly Resource[] {
    return this.byKind.get(kind) ?? [];
  }

  memo<T>(key: string, compute: () => T): T {
    if (!this.memos.has(key)) this.memos.set(key, compute());
    return this.memos.get(key) as T;
  }

  ofKindIn(kind: string, namespace: string): readonly Resource[] {
    let index = this.byKindAndNamespace.get(kind);
    if (!index) {
      index = new Map();
      for (const r of this.ofKind(kind)) {
        const ns = namespaceOf(r, this);
        let list = index.get(ns);
        if (!list) index.set(ns, (list = []));
        list.push(r);
      }
      this.byKindAndNamespace.set(kind, index);
    }
    return index.get(namespace) ?? [];
  }

  resolve(value: unknown): unknown {
    let current = value;
    // References may chain (a name taken from a resource whose name is itself a reference).
    for (let depth = 0; depth < 5; depth++) {
      if (typeof current !== "string" || !current.startsWith("${")) return current;
      const match = REFERENCE.exec(current);
      if (!match) return current;
      const target = this.byAddress.get(`${match[1]}.${match[2]}`);
      if (!target) return current;
      const path: (string | number)[] = [];
      for (const part of match[3]!.matchAll(/\.([A-Za-z0-9_-]+)|\[(\d+)\]/g)) {
        if (part[2] !== undefined) path.push(Number(part[2]));
        else if (/^\d+$/.test(part[1]!)) path.push(Number(part[1]));
        else path.push(part[1]!);
      }
      const next = get(target.attributes, path);
      if (next === undefined) return current;
      current = next;
    }
    return current;
  }

  platformConfigs(): readonly PlatformConfigSource[] {
    if (this.configs) return this.configs;
    this.configs = [];
    for (const resource of this.ofKind("config_map")) {
      const data = get(resource.attributes, ["data"]);
      if (!isObj(data) || !(CONFIG_MAP_KEY in data)) continue;
      const text = this.resolve(data[CONFIG_MAP_KEY]);
      let raw: unknown;
      try {
        raw = typeof text === "string" ? JSON.parse(text) : text;
      } catch (err) {
        this.configs.push({ resource, key: CONFIG_MAP_KEY, raw: text, problems: [`not valid JSON: ${(err as Error).message}`] });
        continue;
      }
      const parsed = PlatformConfigSchema.safeParse(raw);
      this.configs.push(
        parsed.success
          ? { resource, key: CONFIG_MAP_KEY, raw, config: parsed.data }
          : { resource, key: CONFIG_MAP_KEY, raw, problems: issuesFromZod(parsed.error).map((i) => `${i.field}: ${i.message}`) },
      );
    }
    return this.configs;
  }
}

/** Attribute path of a field inside the platform config of a ConfigMap, e.g. `data["platform.json"].pools[0].sharing`. */
export function configPath(source: PlatformConfigSource, inner: string): string {
  const base = `data["${source.key}"]`;
  return inner === "" ? base : `${base}${inner.startsWith("[") ? "" : "."}${inner}`;
}
