import { PriorityClassV1 } from "@cdktf/provider-kubernetes/lib/priority-class-v1/index.js";
import { ResourceQuotaV1 } from "@cdktf/provider-kubernetes/lib/resource-quota-v1/index.js";
import { Construct } from "constructs";
import type { Device, PoolConfig, PriorityClass } from "../runtime/config/schema.ts";
import { FabricStack } from "./fabric-stack.ts";
import { GpuOperatorConfig, RESERVED_OPERATOR_CONFIG } from "./gpu-operator-config.ts";
import { GpuModel, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES } from "./gpu-model.ts";
import { GpuSharing } from "./gpu-sharing.ts";
import { Tenant } from "./tenant.ts";
import { PropIssues, checkedProps } from "./validation.ts";

/** GPUs a tenant may request in one pool. */
export interface TenantQuota {
  readonly tenant: Tenant;
  /**
   * Units of the pool's GPU resource the tenant may request at once: GPUs, time-slice replicas, or MIG
   * instances (under several MIG profiles, this many of each).
   */
  readonly gpus: number;
}

export interface PoolPriorities {
  /** @default 100000 */
  readonly interactive?: number;
  /** @default 1000 */
  readonly batch?: number;
}

export interface GpuPoolProps {
  /**
   * Name of the pool (a DNS-1123 label of at most 49 characters: derived names such as `<name>-interactive` stay label values).
   * @default the construct id, lower-cased
   */
  readonly name?: string;
  readonly model: GpuModel;
  /** GPU nodes in the pool. */
  readonly nodes: number;
  readonly gpusPerNode: number;
  /**
   * How GPUs are shared between workloads.
   * @default GpuSharing.exclusive()
   */
  readonly sharing?: GpuSharing;
  /**
   * GPUs each tenant may request in this pool, as ResourceQuotas in the tenant's segment namespace.
   * @default [] (no quota)
   */
  readonly tenantQuotas?: readonly TenantQuota[];
  /**
   * Extra node labels that select the pool's nodes (e.g. a node-pool label).
   * @default {}
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Namespace of the NVIDIA GPU Operator, where its device-plugin and MIG configs live.
   * @default "gpu-operator"
   */
  readonly operatorNamespace?: string;
  /**
   * PriorityClass values; interactive work preempts batch work.
   * @default { interactive: 100000, batch: 1000 }
   */
  readonly priorities?: PoolPriorities;
}

/** GPU Feature Discovery / GPU Operator node labels the pool selects on. */
export const GPU_LABELS = {
  product: "nvidia.com/gpu.product",
  devicePluginConfig: "nvidia.com/device-plugin.config",
  migConfig: "nvidia.com/mig.config",
} as const;

/** Extended resource and taint the NVIDIA device plugin and GPU node pools use. */
export const GPU_RESOURCE = "nvidia.com/gpu";

/** Highest value a user PriorityClass may have (above it are system classes). */
const MAX_USER_PRIORITY = 1_000_000_000;

export interface Toleration {
  readonly key: string;
  readonly operator: "Exists";
  readonly effect: "NoSchedule";
}

/**
 * A set of identical GPU nodes: PriorityClasses for interactive and batch work, the GPU Operator's
 * sharing config (time-slicing or MIG), and per-tenant GPU quotas.
 */
export class GpuPool extends Construct {
  readonly name: string;
  readonly model: GpuModel;
  readonly sharing: GpuSharing;
  readonly nodes: number;
  readonly gpusPerNode: number;
  readonly operatorNamespace: string;
  readonly tenantQuotas: readonly TenantQuota[];
  /** Node labels a pod needs to land on this pool's nodes. */
  readonly nodeSelector: Readonly<Record<string, string>>;
  /** Tolerations for the `nvidia.com/gpu` NoSchedule taint GPU nodes carry. */
  readonly tolerations: readonly Toleration[];
  readonly priorities: Required<PoolPriorities>;

  constructor(scope: Construct, id: string, props: GpuPoolProps) {
    super(scope, id);
    const { stack, name, model, sharing, operatorNamespace, priorities } = checkedProps(this, () => {
      const stack = FabricStack.of(this);
      const name = props?.name ?? id.toLowerCase();
      const issues = new PropIssues(`GpuPool '${name}'`);
      // Derived object names (`<name>-interactive`, `<name>-gpu-quota`) are also label values: at most 63; 49 keeps room.
      issues.dnsLabel(props?.name === undefined ? "name (defaults to the id, lower-cased)" : "name", name, 63 - "-device-plugin".length);
      if (name === RESERVED_OPERATOR_CONFIG) {
        issues.add("name", `'${name}' is the GPU Operator's mig-parted config key '${RESERVED_OPERATOR_CONFIG}' (MIG off): give each GpuPool a unique name (and not '${RESERVED_OPERATOR_CONFIG}')`);
      }
      const model = props?.model;
      if (!(model instanceof GpuModel)) issues.add("model", "is required: pass a GpuModel such as GpuModel.H100_80GB, or GpuModel.custom({...})");
      issues.positiveInt("nodes", props?.nodes);
      issues.positiveInt("gpusPerNode", props?.gpusPerNode);
      const sharing = props?.sharing ?? GpuSharing.exclusive();
      if (!(sharing instanceof GpuSharing)) issues.add("sharing", "is not a GpuSharing: use GpuSharing.exclusive(), GpuSharing.mig({...}) or GpuSharing.timeSlicing(n)");
      else if (model instanceof GpuModel) checkSharingFitsModel(issues, sharing, model);
      const operatorNamespace = props?.operatorNamespace ?? "gpu-operator";
      issues.dnsLabel("operatorNamespace", operatorNamespace);
      issues.labels("nodeSelector", props?.nodeSelector, Object.values(GPU_LABELS));
      const priorities = { interactive: props?.priorities?.interactive ?? 100_000, batch: props?.priorities?.batch ?? 1_000 };
      for (const cls of ["interactive", "batch"] as const) {
        const value = priorities[cls];
        if (!Number.isInteger(value) || value < 0 || value > MAX_USER_PRIORITY) {
          issues.add(`priorities.${cls}`, `${JSON.stringify(value)} is not a priority: give a whole number from 0 to ${MAX_USER_PRIORITY}`);
        }
      }
      if (priorities.interactive <= priorities.batch) {
        issues.add("priorities.interactive", `${priorities.interactive} is not above batch (${priorities.batch}): interactive work must outrank batch work so it can preempt it`);
      }
      checkTenantQuotas(issues, this, props?.tenantQuotas ?? []);
      issues.throwIfAny();
      stack.claimName("pool", name, this);
      return { stack, name, model, sharing, operatorNamespace, priorities };
    });

    this.name = name;
    this.model = model;
    this.sharing = sharing;
    this.nodes = props.nodes;
    this.gpusPerNode = props.gpusPerNode;
    this.operatorNamespace = operatorNamespace;
    this.tenantQuotas = [...(props.tenantQuotas ?? [])];
    this.priorities = priorities;
    this.nodeSelector = Object.freeze({ ...props.nodeSelector, ...this.gpuNodeLabels() });
    this.tolerations = Object.freeze([{ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" } as const]);

    this.declarePriorityClasses(stack);
    this.declareSharingConfig(stack);
    this.declareQuotas(stack);
  }

  /** Name of this pool's PriorityClass for a class of work. */
  priorityClassName(cls: PriorityClass): string {
    return `${this.name}-${cls}`;
  }

  /**
   * The extended resource a workload requests to get a device of this pool: `nvidia.com/gpu`, or under
   * MIG with several profiles (the device plugin's `mixed` strategy) `nvidia.com/mig-<largest profile>`.
   */
  get gpuResourceName(): string {
    return this.gpuResourceNames[0]!;
  }

  /** Every extended resource the pool's devices are offered as, largest device first. */
  get gpuResourceNames(): readonly string[] {
    if (this.migStrategy !== "mixed") return [GPU_RESOURCE];
    return this.migProfilesBySize().map((p) => `nvidia.com/mig-${p}`);
  }

  /** Memory of the largest device a workload can be scheduled onto, in MiB (a MIG instance's under MIG). */
  get deviceMemoryMiB(): number {
    if (this.sharing.mode !== "mig") return this.model.memoryMiB;
    return this.model.migProfiles.get(this.migProfilesBySize()[0]!)!.memoryMiB;
  }

  /** Schedulable devices per physical GPU: MIG instances, time-slice replicas, or 1. */
  get devicesPerGpu(): number {
    if (this.sharing.mode === "mig") return Object.values(this.sharing.migProfiles).reduce((a, b) => a + b, 0);
    return this.sharing.replicas;
  }

  /** The device plugin's MIG strategy: `single` for one profile (devices stay `nvidia.com/gpu`), `mixed` for several. */
  get migStrategy(): "none" | "single" | "mixed" {
    if (this.sharing.mode !== "mig") return "none";
    return Object.keys(this.sharing.migProfiles).length === 1 ? "single" : "mixed";
  }

  /** The pool as the platform config records it, with every device enumerated. */
  toConfig(): PoolConfig {
    return {
      name: this.name,
      gpu: { model: this.model.name, product: this.model.product, memoryMiB: this.model.memoryMiB },
      nodes: this.nodes,
      gpusPerNode: this.gpusPerNode,
      sharing: this.sharing.toConfig(),
      devices: this.devices(),
      nodeSelector: { ...this.nodeSelector },
      priorityClasses: { interactive: this.priorityClassName("interactive"), batch: this.priorityClassName("batch") },
      tenantQuotas: Object.fromEntries(this.tenantQuotas.map((q) => [q.tenant.name, q.gpus])),
    };
  }

  private devices(): Device[] {
    const devices: Device[] = [];
    const migLayout = this.migProfilesBySize().flatMap((profile) =>
      Array.from({ length: this.sharing.migProfiles[profile]! }, () => ({ profile, memoryMiB: this.model.migProfiles.get(profile)!.memoryMiB })),
    );
    for (let n = 0; n < this.nodes; n++) {
      const node = `${this.name}-n${n}`;
      for (let g = 0; g < this.gpusPerNode; g++) {
        const gpu = `${node}-g${g}`;
        if (migLayout.length === 0) {
          devices.push({ id: gpu, node, index: g, memoryMiB: this.model.memoryMiB });
        } else {
          migLayout.forEach((instance, k) => devices.push({ id: `${gpu}-mig${k}`, node, index: g, memoryMiB: instance.memoryMiB, migProfile: instance.profile }));
        }
      }
    }
    return devices;
  }

  /** The MIG profiles in use, largest memory first (ties: more compute first). */
  private migProfilesBySize(): string[] {
    return Object.keys(this.sharing.migProfiles).sort((a, b) => {
      const pa = this.model.migProfiles.get(a)!;
      const pb = this.model.migProfiles.get(b)!;
      return pb.memoryMiB - pa.memoryMiB || pb.computeSlices - pa.computeSlices || a.localeCompare(b);
    });
  }

  /**
   * Labels GPU Feature Discovery and the GPU Operator put on this pool's nodes. GFD appends `-SHARED`
   * to the product label under time-slicing and `-MIG-<profile>` under the single MIG strategy, so the
   * selector uses the value the nodes really carry.
   */
  private gpuNodeLabels(): Record<string, string> {
    switch (this.sharing.mode) {
      case "exclusive":
        return { [GPU_LABELS.product]: this.model.product };
      case "time-slicing":
        return { [GPU_LABELS.product]: `${this.model.product}-SHARED`, [GPU_LABELS.devicePluginConfig]: this.name };
      case "mig": {
        const product = this.migStrategy === "single" ? `${this.model.product}-MIG-${Object.keys(this.sharing.migProfiles)[0]}` : this.model.product;
        return { [GPU_LABELS.product]: product, [GPU_LABELS.devicePluginConfig]: this.name, [GPU_LABELS.migConfig]: this.name };
      }
    }
  }

  private declarePriorityClasses(stack: FabricStack): void {
    const classes = [
      { cls: "interactive", value: this.priorities.interactive, preemptionPolicy: "PreemptLowerPriority", what: "Interactive work; preempts batch work" },
      { cls: "batch", value: this.priorities.batch, preemptionPolicy: "Never", what: "Batch work; waits instead of preempting" },
    ] as const;
    for (const { cls, value, preemptionPolicy, what } of classes) {
      const name = this.priorityClassName(cls);
      new PriorityClassV1(this, `priority-${cls}`, {
        metadata: { name, labels: { ...stack.labelsFor("priority-class", name), "gpufabric.dev/pool": this.name } },
        value,
        preemptionPolicy,
        globalDefault: false,
        description: `${what} on GPU pool ${this.name} (${this.model.name}).`,
      });
    }
  }

  /** The pool's entries in the GPU Operator's device-plugin config (and mig-parted config under MIG), keyed by the pool name. */
  private declareSharingConfig(stack: FabricStack): void {
    if (this.sharing.mode === "exclusive") return;
    const devicePlugin =
      this.sharing.mode === "time-slicing"
        ? {
            version: "v1",
            flags: { migStrategy: "none" },
            sharing: {
              timeSlicing: {
                renameByDefault: false,
                // A request for two replicas gets no more compute than one: refuse it rather than mislead.
                failRequestsGreaterThanOne: true,
                resources: [{ name: GPU_RESOURCE, replicas: this.sharing.replicas }],
              },
            },
          }
        : { version: "v1", flags: { migStrategy: this.migStrategy } };
    const operator = GpuOperatorConfig.of(stack, this.operatorNamespace);
    operator.addDevicePluginConfig(this.name, devicePlugin);
    if (this.sharing.mode === "mig") operator.addMigConfig(this.name, [{ devices: "all", "mig-enabled": true, "mig-devices": { ...this.sharing.migProfiles } }]);
  }

  /**
   * One ResourceQuota per tenant quota, in the tenant's namespace, scoped to this pool's PriorityClasses
   * so quotas of several pools in one namespace do not add up. Kubernetes quotas extended resources
   * with the `requests.` prefix only (they cannot be overcommitted, so requests equal limits).
   */
  private declareQuotas(stack: FabricStack): void {
    for (const { tenant, gpus } of this.tenantQuotas) {
      const name = `${this.name}-gpu-quota`;
      new ResourceQuotaV1(this, `quota-${tenant.name}`, {
        metadata: {
          name,
          namespace: tenant.segment.namespace,
          labels: { ...stack.labelsFor("gpu-quota", name), "gpufabric.dev/pool": this.name, "gpufabric.dev/tenant": tenant.name },
        },
        spec: {
          hard: Object.fromEntries(this.gpuResourceNames.map((resource) => [`requests.${resource}`, String(gpus)])),
          scopeSelector: {
            matchExpression: [{ scopeName: "PriorityClass", operator: "In", values: [this.priorityClassName("interactive"), this.priorityClassName("batch")] }],
          },
        },
        dependsOn: [tenant.segment.namespaceResource],
      });
    }
  }
}

function checkSharingFitsModel(issues: PropIssues, sharing: GpuSharing, model: GpuModel): void {
  if (sharing.mode !== "mig") return;
  if (!model.supportsMig) {
    const withMig = GpuModel.builtIn().filter((m) => m.supportsMig).map((m) => m.name);
    issues.add("sharing", `${model.name} has no MIG: use GpuSharing.timeSlicing(n) or exclusive(), or a model with MIG (${withMig.join(", ")})`);
    return;
  }
  let compute = 0;
  let memory = 0;
  let memoryKnown = true;
  for (const [profile, count] of Object.entries(sharing.migProfiles)) {
    const spec = model.migProfiles.get(profile);
    if (!spec) {
      issues.add(`sharing.profiles[${JSON.stringify(profile)}]`, `'${profile}' is not a MIG profile of ${model.name}: use one of ${[...model.migProfiles.keys()].join(", ")}`);
      continue;
    }
    compute += spec.computeSlices * count;
    if (spec.memorySlices === undefined) memoryKnown = false;
    else memory += spec.memorySlices * count;
  }
  if (compute > MIG_COMPUTE_SLICES) {
    issues.add("sharing.profiles", `the instances take ${compute} compute slices but a GPU has ${MIG_COMPUTE_SLICES}: request fewer or smaller instances per GPU`);
  } else if (memoryKnown && memory > MIG_MEMORY_SLICES) {
    issues.add("sharing.profiles", `the instances take ${memory} memory slices but a GPU has ${MIG_MEMORY_SLICES}: request fewer instances or profiles with less memory`);
  }
}

function checkTenantQuotas(issues: PropIssues, pool: GpuPool, quotas: readonly TenantQuota[]): void {
  const byNamespace = new Map<string, string>();
  const seen = new Set<Tenant>();
  quotas.forEach((quota, i) => {
    const field = `tenantQuotas[${i}]`;
    if (!(quota?.tenant instanceof Tenant)) {
      issues.add(`${field}.tenant`, "is not a Tenant: pass a Tenant declared in the same FabricStack");
      return;
    }
    const { tenant } = quota;
    if (FabricStack.of(tenant) !== FabricStack.of(pool)) {
      issues.add(`${field}.tenant`, `tenant '${tenant.name}' belongs to another FabricStack: declare it in the pool's stack`);
      return;
    }
    if (!Number.isInteger(quota.gpus) || quota.gpus < 0) {
      issues.add(`${field}.gpus`, `${JSON.stringify(quota.gpus)} is not a GPU count: give a whole number of 0 or more`);
    }
    if (seen.has(tenant)) issues.add(`${field}.tenant`, `tenant '${tenant.name}' has two quotas in this pool: keep one`);
    seen.add(tenant);
    const other = byNamespace.get(tenant.segment.namespace);
    if (other !== undefined && other !== tenant.name) {
      issues.add(
        `${field}.tenant`,
        `tenants '${other}' and '${tenant.name}' both run in namespace '${tenant.segment.namespace}': a ResourceQuota caps a whole namespace, so their quotas would be one shared cap; give each tenant its own NetworkSegment, or quota only one of them`,
      );
    }
    byNamespace.set(tenant.segment.namespace, tenant.name);
  });
}
