/** Reading Kubernetes objects out of normalized kubernetes-provider resources. */
import type { Resource, RuleContextView } from "./model.ts";

export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** A Terraform boolean: JSON true/false, or the strings "true"/"false" Terraform converts to them. */
export function bool(value: unknown): boolean | undefined {
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  return undefined;
}

export function objects(value: unknown): Obj[] {
  return asArray(value).filter(isObj);
}

/** Walks `path` through objects and arrays; a `0` on an object stays put (a single block written without its array). */
export function get(root: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = root;
  for (const part of path) {
    if (typeof part === "number") {
      if (Array.isArray(cur)) cur = cur[part];
      else if (part !== 0) return undefined;
    } else {
      if (Array.isArray(cur) && cur.length === 1) cur = cur[0];
      if (!isObj(cur)) return undefined;
      cur = cur[part];
    }
  }
  return cur;
}

/** `spec.template.spec.container[0].image` from path parts. */
export function joinPath(parts: readonly (string | number)[]): string {
  let out = "";
  for (const part of parts) out += typeof part === "number" ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

const KIND_ALIASES: Record<string, string> = { daemonset: "daemon_set" };

const kinds = new Map<string, string | undefined>();

/** `kubernetes_deployment_v1` → `deployment`; undefined for resources of other providers. */
export function kindOf(type: string): string | undefined {
  if (kinds.has(type)) return kinds.get(type);
  let kind: string | undefined;
  if (type.startsWith("kubernetes_")) {
    const bare = type.slice("kubernetes_".length).replace(/_v\d+(beta\d+)?$/, "");
    kind = KIND_ALIASES[bare] ?? bare;
  }
  kinds.set(type, kind);
  return kind;
}

export const WORKLOAD_KINDS = ["pod", "deployment", "stateful_set", "daemon_set", "job", "cron_job", "replication_controller"] as const;

export function stringMap(value: unknown, context?: RuleContextView): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(value)) return out;
  for (const [k, v] of Object.entries(value)) {
    const resolved = context ? context.resolve(v) : v;
    if (typeof resolved === "string" || typeof resolved === "number" || typeof resolved === "boolean") out[k] = String(resolved);
  }
  return out;
}

export function nameOf(resource: Resource, context: RuleContextView): string | undefined {
  const name = context.resolve(get(resource.attributes, ["metadata", "name"]));
  return typeof name === "string" ? name : undefined;
}

const namespaces = new WeakMap<Resource, string>();

/** Namespace of a namespaced object; Kubernetes puts objects without one in `default`. */
export function namespaceOf(resource: Resource, context: RuleContextView): string {
  let ns = namespaces.get(resource);
  if (ns === undefined) {
    const value = context.resolve(get(resource.attributes, ["metadata", "namespace"]));
    namespaces.set(resource, (ns = typeof value === "string" && value !== "" ? value : "default"));
  }
  return ns;
}

const labelCache = new WeakMap<Resource, Record<string, string>>();

export function labelsOf(resource: Resource, context: RuleContextView): Record<string, string> {
  let labels = labelCache.get(resource);
  if (!labels) labelCache.set(resource, (labels = stringMap(get(resource.attributes, ["metadata", "labels"]), context)));
  return labels;
}

export interface PodTemplate {
  readonly spec: Obj;
  /** Path of the pod spec inside the resource, e.g. `["spec", "template", "spec"]`. */
  readonly specPath: readonly (string | number)[];
  readonly labels: Record<string, string>;
}

const podTemplates = new WeakMap<Resource, PodTemplate | null>();

/** The pod a workload runs (its template), or undefined for non-workloads. Resources never change, so it is computed once. */
export function podTemplateOf(resource: Resource, context: RuleContextView): PodTemplate | undefined {
  let pod = podTemplates.get(resource);
  if (pod === undefined) podTemplates.set(resource, (pod = readPodTemplate(resource, context) ?? null));
  return pod ?? undefined;
}

function readPodTemplate(resource: Resource, context: RuleContextView): PodTemplate | undefined {
  const kind = kindOf(resource.type);
  let templatePath: (string | number)[];
  switch (kind) {
    case "pod": {
      const spec = get(resource.attributes, ["spec"]);
      return isObj(spec) ? { spec, specPath: ["spec"], labels: labelsOf(resource, context) } : undefined;
    }
    case "cron_job":
      templatePath = ["spec", "job_template", "spec", "template"];
      break;
    case "deployment":
    case "stateful_set":
    case "daemon_set":
    case "job":
    case "replication_controller":
      templatePath = ["spec", "template"];
      break;
    default:
      return undefined;
  }
  const spec = get(resource.attributes, [...templatePath, "spec"]);
  if (!isObj(spec)) return undefined;
  return { spec, specPath: [...templatePath, "spec"], labels: stringMap(get(resource.attributes, [...templatePath, "metadata", "labels"]), context) };
}

export interface ContainerRef {
  readonly container: Obj;
  readonly path: readonly (string | number)[];
  readonly name: string;
}

/** Regular and init containers of a pod spec, with their paths. */
const containerLists = new WeakMap<PodTemplate, ContainerRef[]>();

export function containersOf(pod: PodTemplate): ContainerRef[] {
  const cached = containerLists.get(pod);
  if (cached) return cached;
  const out: ContainerRef[] = [];
  containerLists.set(pod, out);
  for (const block of ["init_container", "container"] as const) {
    objects(pod.spec[block]).forEach((container, i) => {
      out.push({ container, path: [...pod.specPath, block, i], name: typeof container.name === "string" ? container.name : `${block}[${i}]` });
    });
  }
  return out;
}

/** Whether a Kubernetes label selector (`match_labels` + `match_expressions`) selects `labels`. An empty selector selects everything. */
export function selectorMatches(selector: unknown, labels: Record<string, string>, context?: RuleContextView): boolean {
  if (!isObj(selector)) return true;
  for (const [k, v] of Object.entries(stringMap(selector.match_labels, context))) if (labels[k] !== v) return false;
  for (const expr of objects(selector.match_expressions)) {
    const key = String(expr.key ?? "");
    const values = asArray(expr.values).map(String);
    const has = Object.hasOwn(labels, key);
    switch (expr.operator) {
      case "In":
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** A selector with no labels and no expressions: it selects every pod of its namespace. */
export function selectsAll(selector: unknown): boolean {
  if (!isObj(selector)) return true;
  return Object.keys(isObj(selector.match_labels) ? selector.match_labels : {}).length === 0 && objects(selector.match_expressions).length === 0;
}

export const GPU_RESOURCE = "nvidia.com/gpu";
export const GPU_TAINT_KEY = "nvidia.com/gpu";

/** `nvidia.com/gpu`, `nvidia.com/gpu.shared` (renamed time-slices) or a MIG resource `nvidia.com/mig-3g.40gb`. */
export function isGpuResourceName(name: string): boolean {
  return name === GPU_RESOURCE || name === "nvidia.com/gpu.shared" || name.startsWith("nvidia.com/mig-");
}

export function gpuAmounts(container: Obj, which: "limits" | "requests"): Record<string, string> {
  const amounts = stringMap(get(container, ["resources", which]));
  return Object.fromEntries(Object.entries(amounts).filter(([k]) => isGpuResourceName(k)));
}

const gpuUse = new WeakMap<PodTemplate, boolean>();

/** Whether any container of the pod asks for a GPU (in limits or requests). */
export function podUsesGpu(pod: PodTemplate): boolean {
  let uses = gpuUse.get(pod);
  if (uses === undefined) gpuUse.set(pod, (uses = readPodUsesGpu(pod)));
  return uses;
}

function readPodUsesGpu(pod: PodTemplate): boolean {
  return containersOf(pod).some(({ container }) =>
    [gpuAmounts(container, "limits"), gpuAmounts(container, "requests")].some((m) => Object.values(m).some((v) => v !== "0")),
  );
}

const GPU_NODE_LABEL = /^nvidia\.com\/(gpu\.(product|present|count|memory|family|machine)|mig\.config|device-plugin\.config)$/;

/** Whether the pod is steered onto GPU nodes, by node selector or required node affinity. */
export function podSelectsGpuNodes(pod: PodTemplate, context?: RuleContextView): boolean {
  if (Object.keys(stringMap(pod.spec.node_selector, context)).some((k) => GPU_NODE_LABEL.test(k))) return true;
  const terms = objects(get(pod.spec, ["affinity", "node_affinity", "required_during_scheduling_ignored_during_execution", "node_selector_term"]));
  return terms.length > 0 && terms.every((term) => objects(term.match_expressions).some((e) => GPU_NODE_LABEL.test(String(e.key ?? "")) && e.operator !== "DoesNotExist" && e.operator !== "NotIn"));
}

/** Whether the pod tolerates the `nvidia.com/gpu:NoSchedule` taint the GPU Operator puts on GPU nodes. */
export function podToleratesGpuTaint(pod: PodTemplate): boolean {
  return objects(pod.spec.toleration).some((t) => {
    const effectOk = t.effect === undefined || t.effect === "" || t.effect === "NoSchedule";
    if (!effectOk) return false;
    if (t.operator === "Exists") return t.key === undefined || t.key === "" || t.key === GPU_TAINT_KEY;
    return t.key === GPU_TAINT_KEY;
  });
}

/** A workload meant for GPU nodes: it asks for GPUs, selects GPU nodes or tolerates the GPU taint. */
export function isGpuWorkload(pod: PodTemplate, context?: RuleContextView): boolean {
  return podUsesGpu(pod) || podSelectsGpuNodes(pod, context) || objects(pod.spec.toleration).some((t) => t.key === GPU_TAINT_KEY);
}

export const LABEL = {
  name: "app.kubernetes.io/name",
  component: "app.kubernetes.io/component",
  instance: "app.kubernetes.io/instance",
  region: "gpufabric.dev/region",
  classification: "gpufabric.dev/data-classification",
  segment: "gpufabric.dev/segment",
  pool: "gpufabric.dev/pool",
  tier: "gpufabric.dev/tier",
} as const;

const agentCache = new WeakMap<Resource, boolean>();

/** The gpufabric agent's workload, by the labels WorkflowDeployment puts on it. */
export function isAgentWorkload(resource: Resource, context: RuleContextView): boolean {
  let agent = agentCache.get(resource);
  if (agent === undefined) agentCache.set(resource, (agent = readIsAgentWorkload(resource, context)));
  return agent;
}

function readIsAgentWorkload(resource: Resource, context: RuleContextView): boolean {
  const kind = kindOf(resource.type);
  if (!kind || !(WORKLOAD_KINDS as readonly string[]).includes(kind)) return false;
  const labels = labelsOf(resource, context);
  const pod = podTemplateOf(resource, context);
  const all = { ...labels, ...(pod?.labels ?? {}) };
  return all[LABEL.name] === "gpufabric-agent" || (all[LABEL.component] === "agent" && all["app.kubernetes.io/part-of"] === "gpufabric");
}

/** Secret names mounted into a pod (volumes of type secret, and projected secrets), with the volume name. */
export function secretVolumes(pod: PodTemplate, context: RuleContextView): { volume: string; secretName: string; index: number }[] {
  const out: { volume: string; secretName: string; index: number }[] = [];
  objects(pod.spec.volume).forEach((v, index) => {
    const volume = String(v.name ?? "");
    const direct = context.resolve(get(v, ["secret", "secret_name"]));
    if (typeof direct === "string") out.push({ volume, secretName: direct, index });
    for (const source of objects(get(v, ["projected", "sources"]))) {
      const name = context.resolve(get(source, ["secret", "name"]));
      if (typeof name === "string") out.push({ volume, secretName: name, index });
    }
  });
  return out;
}

export function claimVolumes(pod: PodTemplate, context: RuleContextView): { volume: string; claimName: string; index: number }[] {
  const out: { volume: string; claimName: string; index: number }[] = [];
  objects(pod.spec.volume).forEach((v, index) => {
    const claim = context.resolve(get(v, ["persistent_volume_claim", "claim_name"]));
    if (typeof claim === "string") out.push({ volume: String(v.name ?? ""), claimName: claim, index });
  });
  return out;
}

/** Mounts of a volume across the pod's containers. */
export function mountsOf(pod: PodTemplate, volume: string): { container: ContainerRef; mount: Obj; index: number }[] {
  const out: { container: ContainerRef; mount: Obj; index: number }[] = [];
  for (const ref of containersOf(pod)) {
    objects(ref.container.volume_mount).forEach((mount, index) => {
      if (mount.name === volume) out.push({ container: ref, mount, index });
    });
  }
  return out;
}
