import { PriorityClassV1 } from "@cdktf/provider-kubernetes/lib/priority-class-v1/index.js";
import { ResourceQuotaV1 } from "@cdktf/provider-kubernetes/lib/resource-quota-v1/index.js";
import { Construct } from "constructs";
import type { Device, PoolConfig, PriorityClass } from "../runtime/config/schema.ts";
import { FabricStack } from "./fabric-stack.ts";
import { GpuOperatorConfig, RESERVED_OPERATOR_CONFIG } from "./gpu-operator-config.ts";
import { GpuModel, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES } from "./gpu-model.ts";
import { GPU_LABELS, GPU_RESOURCE, GPU_TAINT, gpuNodeLabels, isGpuNodePool, migProfilesBySize, type GpuNodePool } from "./gpu-node-pool.ts";
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
  /**
   * A cloud node pool that creates this pool's nodes (EksGpuNodePool from gpufabric/aws, GkeGpuNodePool
   * from gpufabric/gcp, AksGpuNodePool from gpufabric/azure). The pool takes its model, GPUs per node,
   * sharing, name and node count from it; any of those given here as well must agree with it.
   * @default none: the pool selects existing nodes by their labels (on-prem, or nodes made elsewhere)
   */
  readonly nodePool?: GpuNodePool;
  /**
   * The GPU model of the pool's nodes.
   * @default the node pool's (required without a nodePool)
   */
  readonly model?: GpuModel;
  /**
   * GPU nodes in the pool (with an elastic node pool: the most it grows to).
   * @default the node pool's maxNodes (required without a nodePool)
   */
  readonly nodes?: number;
  /**
   * GPUs per node.
   * @default the node pool's instance type's GPU count (required without a nodePool)
   */
  readonly gpusPerNode?: number;
  /**
   * How GPUs are shared between workloads.
   * @default the node pool's sharing, or GpuSharing.exclusive()
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

export { GPU_LABELS, GPU_RESOURCE };

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
  /** The cloud node pool that creates the pool's nodes, when one was given. */
  readonly nodePool: GpuNodePool | undefined;

  constructor(scope: Construct, id: string, props: GpuPoolProps) {
    super(scope, id);
    const { stack, name, model, sharing, operatorNamespace, priorities, nodes, gpusPerNode } = checkedProps(this, () => {
      const stack = FabricStack.of(this);
      const nodePool = props?.nodePool;
      const name = props?.name ?? (isGpuNodePool(nodePool) ? nodePool.poolName : id.toLowerCase());
      const issues = new PropIssues(`GpuPool '${name}'`);
      const { model, nodes, gpusPerNode, sharing } = isGpuNodePool(nodePool) ? fromNodePool(issues, props, name, nodePool) : { ...props, sharing: props?.sharing ?? GpuSharing.exclusive() };
      if (nodePool !== undefined && !isGpuNodePool(nodePool)) {
        issues.add("nodePool", "is not a GPU node pool: pass an EksGpuNodePool (gpufabric/aws), GkeGpuNodePool (gpufabric/gcp) or AksGpuNodePool (gpufabric/azure)");
      }
      // Derived object names (`<name>-interactive`, `<name>-gpu-quota`) are also label values: at most 63; 49 keeps room.
      issues.dnsLabel(props?.name === undefined ? "name (defaults to the id, lower-cased)" : "name", name, 63 - "-device-plugin".length);
      if (name === RESERVED_OPERATOR_CONFIG) {
        issues.add("name", `'${name}' is the GPU Operator's mig-parted config key '${RESERVED_OPERATOR_CONFIG}' (MIG off): give each GpuPool a unique name (and not '${RESERVED_OPERATOR_CONFIG}')`);
      }
      if (!(model instanceof GpuModel)) issues.add("model", "is required: pass a GpuModel such as GpuModel.H100_80GB, or GpuModel.custom({...})");
      issues.positiveInt("nodes", nodes);
      issues.positiveInt("gpusPerNode", gpusPerNode);
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
      return { stack, name, model: model!, sharing, operatorNamespace, priorities, nodes: nodes!, gpusPerNode: gpusPerNode! };
    });

    this.name = name;
    this.model = model;
    this.sharing = sharing;
    this.nodes = nodes;
    this.gpusPerNode = gpusPerNode;
    this.nodePool = props.nodePool;
    this.operatorNamespace = operatorNamespace;
    this.tenantQuotas = [...(props.tenantQuotas ?? [])];
    this.priorities = priorities;
    this.nodeSelector = Object.freeze({ ...props.nodeSelector, ...this.nodePool?.extraLabels, ...gpuNodeLabels(this.name, this.model, this.sharing) });
    // A node pool's nodes may carry more taints than the GPU one (AKS taints spot nodes): tolerate each.
    const taintKeys = [...new Set((this.nodePool?.taints ?? [GPU_TAINT]).map((t) => t.key))];
    this.tolerations = Object.freeze(taintKeys.map((key) => ({ key, operator: "Exists", effect: "NoSchedule" }) as const));

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
    return migProfilesBySize(this.model, this.sharing).map((p) => `nvidia.com/mig-${p}`);
  }

  /** Memory of the largest device a workload can be scheduled onto, in MiB (a MIG instance's under MIG). */
  get deviceMemoryMiB(): number {
    if (this.sharing.mode !== "mig") return this.model.memoryMiB;
    return this.model.migProfiles.get(migProfilesBySize(this.model, this.sharing)[0]!)!.memoryMiB;
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
    const migLayout = migProfilesBySize(this.model, this.sharing).flatMap((profile) =>
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

/**
 * The pool's model, GPUs per node, sharing and node count from its node pool; a value also given on the
 * pool must agree, since the nodes are what the node pool makes of them.
 */
function fromNodePool(
  issues: PropIssues,
  props: GpuPoolProps,
  name: string,
  nodePool: GpuNodePool,
): { model: GpuModel; nodes: number; gpusPerNode: number; sharing: GpuSharing } {
  const from = `node pool '${nodePool.node.path}' (${nodePool.instanceType})`;
  if (props.model !== undefined && props.model !== nodePool.model) {
    issues.add(
      "model",
      `is ${props.model} but ${from} has ${nodePool.model} GPUs: leave model out to take the node pool's, or give the node pool an instance type with ${props.model} GPUs`,
    );
  }
  if (props.gpusPerNode !== undefined && props.gpusPerNode !== nodePool.gpusPerNode) {
    issues.add("gpusPerNode", `is ${props.gpusPerNode} but ${from} has ${nodePool.gpusPerNode} GPU(s) per node: leave gpusPerNode out, or pick an instance type with ${props.gpusPerNode}`);
  }
  if (props.sharing !== undefined && JSON.stringify(props.sharing.toConfig()) !== JSON.stringify(nodePool.sharing.toConfig())) {
    issues.add(
      "sharing",
      `is ${JSON.stringify(props.sharing.toConfig())} but ${from} is set up for ${JSON.stringify(nodePool.sharing.toConfig())}: leave sharing out, or give the node pool the same sharing`,
    );
  }
  if (name !== nodePool.poolName) {
    issues.add(
      "name",
      `is '${name}' but ${from} labels its nodes for pool '${nodePool.poolName}': leave name out to take the node pool's, or set the node pool's pool: '${name}'`,
    );
  }
  if (props.nodes !== undefined && props.nodes > nodePool.maxNodes) {
    issues.add("nodes", `is ${props.nodes} but ${from} grows to at most ${nodePool.maxNodes} node(s): leave nodes out, or raise the node pool's maxNodes`);
  }
  return { model: nodePool.model, nodes: props.nodes ?? nodePool.maxNodes, gpusPerNode: nodePool.gpusPerNode, sharing: nodePool.sharing };
}
