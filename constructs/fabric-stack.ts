import { KubernetesProvider } from "@cdktf/provider-kubernetes/lib/provider/index.js";
import { TerraformStack } from "cdktf";
import type { Construct, IConstruct } from "constructs";
import { ValidationError } from "../runtime/config/errors.ts";
import { PropIssues, checkedProps, isLabelValue } from "./validation.ts";

export interface FabricStackProps {
  /**
   * Kubeconfig file the kubernetes provider reads.
   * @default "~/.kube/config" (unless `inCluster`)
   */
  readonly kubeconfigPath?: string;
  /**
   * Context of the kubeconfig to use.
   * @default the kubeconfig's current context
   */
  readonly kubeconfigContext?: string;
  /**
   * Configure the provider from the pod's service account (for `cdktf deploy` run inside the cluster).
   * @default false
   */
  readonly inCluster?: boolean;
  /**
   * Name of the platform, set as the `gpufabric.dev/platform` label on every object (a DNS-1123 label).
   * @default the stack id
   */
  readonly platformName?: string;
  /**
   * Where the cluster runs (e.g. `eu-west-1`); set as the `gpufabric.dev/region` label and read by residency rules.
   * @default no region
   */
  readonly region?: string;
  /**
   * Availability zones the cluster's GPU nodes span.
   * @default []
   */
  readonly zones?: readonly string[];
  /**
   * Extra labels set on every Kubernetes object of the stack.
   * @default {}
   */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Label keys every object of a stack carries; set by the stack, never by its users. */
export const COMMON_LABEL_KEYS = [
  "app.kubernetes.io/part-of",
  "app.kubernetes.io/managed-by",
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/component",
  "gpufabric.dev/platform",
  "gpufabric.dev/region",
] as const;

const FABRIC_STACK = Symbol.for("gpufabric.fabric-stack");

/**
 * One Kubernetes cluster's share of a GPU platform: configures the kubernetes provider and the labels
 * every object carries. Several stacks in one app serve several clusters or regions.
 */
export class FabricStack extends TerraformStack {
  readonly platformName: string;
  readonly region: string | undefined;
  readonly zones: readonly string[];
  readonly commonLabels: Readonly<Record<string, string>>;
  readonly provider: KubernetesProvider;
  private readonly names = new Map<string, IConstruct>();

  /** The FabricStack that `construct` is declared in; throws when there is none. */
  static override of(construct: IConstruct): FabricStack {
    for (const scope of [...construct.node.scopes].reverse()) {
      if ((scope as Partial<Record<typeof FABRIC_STACK, true>>)[FABRIC_STACK] === true) return scope as FabricStack;
    }
    throw new Error(
      `'${construct.node.path || construct.node.id}' is not inside a FabricStack: declare it with a FabricStack (or a construct inside one) as its scope, e.g. new GpuPool(stack, "batch", {...})`,
    );
  }

  constructor(scope: Construct, id: string, props: FabricStackProps = {}) {
    super(scope, id);
    Object.defineProperty(this, FABRIC_STACK, { value: true });
    const platformName = checkedProps(this, () => {
      const issues = new PropIssues(`FabricStack '${id}'`);
      const platformName = props.platformName ?? id;
      issues.dnsLabel(props.platformName === undefined ? "platformName (defaults to the stack id)" : "platformName", platformName);
      if (props.inCluster && props.kubeconfigPath !== undefined) {
        issues.add("kubeconfigPath", "cannot be set together with inCluster: true; drop one of them");
      }
      if (props.inCluster && props.kubeconfigContext !== undefined) {
        issues.add("kubeconfigContext", "cannot be set together with inCluster: true; drop one of them");
      }
      if (props.kubeconfigPath !== undefined && props.kubeconfigPath.trim() === "") {
        issues.add("kubeconfigPath", "is empty: give the path of a kubeconfig file, or leave it out for ~/.kube/config");
      }
      if (props.kubeconfigContext !== undefined && props.kubeconfigContext.trim() === "") {
        issues.add("kubeconfigContext", "is empty: give a context name from the kubeconfig, or leave it out for its current context");
      }
      if (props.region !== undefined && (props.region === "" || !isLabelValue(props.region))) {
        issues.add("region", `${JSON.stringify(props.region)} is not usable as a label value: use letters, digits, '-', '_' or '.', e.g. 'eu-west-1'`);
      }
      (props.zones ?? []).forEach((zone, i) => {
        if (zone === "" || !isLabelValue(zone)) issues.add(`zones[${i}]`, `${JSON.stringify(zone)} is not a zone name: use letters, digits, '-', '_' or '.', e.g. 'eu-west-1a'`);
      });
      issues.labels("labels", props.labels, COMMON_LABEL_KEYS);
      issues.throwIfAny();
      return platformName;
    });

    this.platformName = platformName;
    this.region = props.region;
    this.zones = [...(props.zones ?? [])];
    this.commonLabels = Object.freeze({
      ...props.labels,
      "app.kubernetes.io/part-of": "gpufabric",
      "app.kubernetes.io/managed-by": "cdktf",
      "gpufabric.dev/platform": platformName,
      ...(props.region !== undefined ? { "gpufabric.dev/region": props.region } : {}),
    });
    // In-cluster: no config path, so the provider falls back to the pod's service account.
    this.provider = new KubernetesProvider(
      this,
      "kubernetes",
      props.inCluster
        ? {}
        : { configPath: props.kubeconfigPath ?? "~/.kube/config", ...(props.kubeconfigContext ? { configContext: props.kubeconfigContext } : {}) },
    );
  }

  /** Labels for one Kubernetes object: the common labels plus `app.kubernetes.io/{name,instance,component}`. */
  labelsFor(component: string, instance: string): Record<string, string> {
    const issues = new PropIssues(`labels of ${component} '${instance}'`);
    // `gpufabric-<component>` becomes app.kubernetes.io/name, so it too must stay a label value.
    if (!isLabelValue(`gpufabric-${component}`) || component === "") issues.add("component", `${JSON.stringify(component)} is not usable in a label value: use at most 53 letters, digits or '-'`);
    if (!isLabelValue(instance) || instance === "") issues.add("instance", `${JSON.stringify(instance)} is not a label value: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`);
    issues.throwIfAny();
    return {
      ...this.commonLabels,
      "app.kubernetes.io/name": `gpufabric-${component}`,
      "app.kubernetes.io/instance": instance,
      "app.kubernetes.io/component": component,
    };
  }

  /**
   * Reserves `name` for `owner` among the stack's objects of one kind (pools, tiers, segments…).
   * Throws a ValidationError naming both owners when the name is taken.
   */
  claimName(kind: string, name: string, owner: IConstruct, field = "name"): void {
    const key = `${kind}\u0000${name}`;
    const holder = this.names.get(key);
    // A holder whose constructor failed was detached from the tree; its name is free again.
    const attached = holder !== undefined && holder.node.scope?.node.tryFindChild(holder.node.id) === holder;
    if (holder && attached && holder !== owner) {
      throw new ValidationError(`${owner.node.path}`, [
        { field, message: `${kind} '${name}' is already declared by '${holder.node.path}' in this stack: give one of them another ${field}` },
      ]);
    }
    this.names.set(key, owner);
  }
}

/** Throws when `other` belongs to another FabricStack than `construct` (objects of two clusters cannot refer to each other). */
export function requireSameStack(construct: IConstruct, other: IConstruct, field: string, what: string): void {
  const mine = FabricStack.of(construct);
  const theirs = FabricStack.of(other);
  if (mine !== theirs) {
    throw new ValidationError(construct.node.path, [
      {
        field,
        message: `${what} '${other.node.path}' belongs to stack '${theirs.node.id}', not '${mine.node.id}': declare it in the same FabricStack (each stack is one cluster)`,
      },
    ]);
  }
}
