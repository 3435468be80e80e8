/**
 * The pod of an agent workload, in the style of cdk8s-plus: secure defaults (restricted pod security
 * context, no service-account token, no service links), containers added to it, and its volumes taken
 * from what those containers mount, so that a volume is never declared without a container using it.
 */
import type {
  DeploymentV1SpecTemplateSpec,
  DeploymentV1SpecTemplateSpecAffinity,
  DeploymentV1SpecTemplateSpecToleration,
  DeploymentV1SpecTemplateSpecTopologySpreadConstraint,
} from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import type { Container } from "./container.ts";
import { restrictedPodSecurityContext } from "./security-context.ts";
import type { Volume } from "./volume.ts";

export interface PodSpecProps {
  readonly serviceAccountName: string;
  /** The user, group and fsGroup of the pod. */
  readonly uid: string;
  readonly priorityClassName?: string;
  readonly nodeSelector?: Readonly<Record<string, string>>;
  readonly tolerations?: readonly DeploymentV1SpecTemplateSpecToleration[];
  /** @default 30 (Kubernetes' own) */
  readonly terminationGracePeriodSeconds?: number;
  /** Where the pods may go relative to each other (e.g. one per node). @default none */
  readonly affinity?: DeploymentV1SpecTemplateSpecAffinity;
  /** How the pods spread over nodes and zones. @default none */
  readonly topologySpreadConstraints?: readonly DeploymentV1SpecTemplateSpecTopologySpreadConstraint[];
  /** Mount the service account's token: only for a pod that calls the Kubernetes API (an elastic cluster's control planes). @default false */
  readonly kubernetesApiAccess?: boolean;
}

export class PodSpec {
  private readonly containers: Container[] = [];

  constructor(private readonly props: PodSpecProps) {}

  addContainer(container: Container): this {
    if (this.containers.some((c) => c.name === container.name)) throw new Error(`the pod already has a container named '${container.name}': give each container a name of its own`);
    this.containers.push(container);
    return this;
  }

  /** Every volume some container mounts, once, in the order of first mount (first container first). */
  get volumes(): readonly Volume[] {
    const byName = new Map<string, Volume>();
    for (const volume of this.containers.flatMap((c) => c.volumes)) {
      const seen = byName.get(volume.name);
      if (seen && seen !== volume) throw new Error(`two different volumes are named '${volume.name}' in one pod: give one of them another name`);
      byName.set(volume.name, volume);
    }
    return [...byName.values()];
  }

  toSpec(): DeploymentV1SpecTemplateSpec {
    const p = this.props;
    return {
      serviceAccountName: p.serviceAccountName,
      // The Kubernetes API credentials stay out of the pod: a container that is broken into cannot use them.
      automountServiceAccountToken: p.kubernetesApiAccess === true,
      enableServiceLinks: false,
      ...(p.priorityClassName !== undefined ? { priorityClassName: p.priorityClassName } : {}),
      ...(p.nodeSelector !== undefined ? { nodeSelector: { ...p.nodeSelector } } : {}),
      ...(p.tolerations !== undefined ? { toleration: p.tolerations.map((t) => ({ ...t })) } : {}),
      ...(p.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: p.terminationGracePeriodSeconds } : {}),
      ...(p.affinity !== undefined ? { affinity: p.affinity } : {}),
      ...(p.topologySpreadConstraints !== undefined ? { topologySpreadConstraint: [...p.topologySpreadConstraints] } : {}),
      securityContext: restrictedPodSecurityContext(p.uid),
      container: this.containers.map((c) => c.toSpec()),
      volume: this.volumes.map((v) => v.toSpec()),
    };
  }
}
