import { NamespaceV1 } from "@cdktf/provider-kubernetes/lib/namespace-v1/index.js";
import { NetworkPolicyV1, type NetworkPolicyV1Spec } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { Construct } from "constructs";
import type { SegmentConfig } from "../runtime/config/schema.ts";
import { checkCidr } from "./cidr.ts";
import { FabricStack, requireSameStack } from "./fabric-stack.ts";
import { PropIssues, checkedProps } from "./validation.ts";

export interface NetworkSegmentProps {
  /**
   * Name of the segment (a DNS-1123 label).
   * @default the construct id, lower-cased
   */
  readonly name?: string;
  /**
   * Namespace the segment's workloads run in.
   * @default the segment's name
   */
  readonly namespace?: string;
  /**
   * CIDRs outside the cluster that pods of this segment may reach.
   * @default [] (nothing outside the cluster besides DNS)
   */
  readonly egressCidrs?: readonly string[];
  /**
   * Allow egress to the cluster DNS in kube-system on UDP and TCP 53.
   * @default true
   */
  readonly allowDns?: boolean;
}

/** Label Kubernetes sets on every namespace with its own name (1.21+); policies select namespaces by it. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/** A segment allowed to reach this one, and on which TCP ports. */
export interface AllowedFlow {
  readonly segment: NetworkSegment;
  readonly ports: readonly number[];
}

/**
 * A namespace whose pods reach nothing and are reached by nothing until a flow is allowed:
 * Pod Security `restricted`, default-deny ingress and egress, DNS egress, and an optional egress allowlist.
 */
export class NetworkSegment extends Construct {
  readonly name: string;
  readonly namespace: string;
  readonly egressCidrs: readonly string[];
  readonly allowDns: boolean;
  /** The Namespace object; objects placed in it depend on it. */
  readonly namespaceResource: NamespaceV1;
  private readonly flows: AllowedFlow[] = [];

  constructor(scope: Construct, id: string, props: NetworkSegmentProps = {}) {
    super(scope, id);
    const { stack, name, namespace } = checkedProps(this, () => {
      const stack = FabricStack.of(this);
      const name = props.name ?? id.toLowerCase();
      const issues = new PropIssues(`NetworkSegment '${name}'`);
      // Leaves room for the `allow-from-<name>` policy names, which are also label values (at most 63).
      issues.dnsLabel(props.name === undefined ? "name (defaults to the id, lower-cased)" : "name", name, 52);
      const namespace = props.namespace ?? name;
      if (props.namespace !== undefined) issues.dnsLabel("namespace", namespace);
      if (["kube-system", "kube-public", "kube-node-lease", "default"].includes(namespace)) {
        issues.add("namespace", `'${namespace}' is a namespace Kubernetes manages: give the segment a namespace of its own`);
      }
      (props.egressCidrs ?? []).forEach((cidr, i) => {
        const result = checkCidr(cidr);
        if (!result.ok) issues.add(`egressCidrs[${i}]`, result.message);
      });
      issues.throwIfAny();
      stack.claimName("segment", name, this);
      stack.claimName("namespace", namespace, this, "namespace");
      return { stack, name, namespace };
    });

    this.name = name;
    this.namespace = namespace;
    this.egressCidrs = [...(props.egressCidrs ?? [])];
    this.allowDns = props.allowDns ?? true;

    this.namespaceResource = new NamespaceV1(this, "namespace", {
      metadata: {
        name: namespace,
        labels: {
          ...stack.labelsFor("segment", name),
          "gpufabric.dev/segment": name,
          // Pod Security Admission: reject, audit and warn on anything beyond `restricted`.
          "pod-security.kubernetes.io/enforce": "restricted",
          "pod-security.kubernetes.io/audit": "restricted",
          "pod-security.kubernetes.io/warn": "restricted",
        },
      },
    });

    this.policy(this, "default-deny", "default-deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    if (this.allowDns) {
      this.policy(this, "allow-dns", "allow-dns", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "kube-system" } } }],
            ports: [
              { protocol: "UDP", port: "53" },
              { protocol: "TCP", port: "53" },
            ],
          },
        ],
      });
    }
    if (this.egressCidrs.length > 0) {
      this.policy(this, "allow-egress-cidrs", "allow-egress-cidrs", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: this.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })) }],
      });
    }
  }

  /** Segments allowed to reach this one, with their ports. */
  get allowedFrom(): readonly AllowedFlow[] {
    return [...this.flows];
  }

  /**
   * Let pods of `other` reach pods of this segment on the given TCP ports: an ingress policy here and
   * the matching egress policy in `other` (both are needed under default-deny).
   */
  allowFrom(other: NetworkSegment, ports: readonly number[]): void {
    const issues = new PropIssues(`NetworkSegment '${this.name}'.allowFrom('${other?.name}')`);
    if (!(other instanceof NetworkSegment)) {
      issues.add("other", "is not a NetworkSegment: pass the segment whose pods may connect");
      issues.throwIfAny();
    }
    requireSameStack(this, other, "other", "segment");
    if (other === this) issues.add("other", `is this segment itself: pods within '${this.name}' need no flow between segments; pass another segment`);
    if (this.flows.some((f) => f.segment === other)) {
      issues.add("other", `'${other.name}' is already allowed into '${this.name}': pass all its ports in one allowFrom call`);
    }
    if (!Array.isArray(ports) || ports.length === 0) issues.add("ports", "is empty: list the TCP ports the other segment may connect to, e.g. [8443]");
    (Array.isArray(ports) ? ports : []).forEach((port, i) => {
      if (!Number.isInteger(port) || port < 1 || port > 65535) issues.add(`ports[${i}]`, `${JSON.stringify(port)} is not a port: give a whole number from 1 to 65535`);
    });
    if (new Set(ports).size !== ports.length) issues.add("ports", "lists a port twice: list each port once");
    issues.throwIfAny();

    const sortedPorts = [...ports].sort((a, b) => a - b);
    const tcpPorts = sortedPorts.map((port) => ({ protocol: "TCP", port: String(port) }));
    this.policy(this, `allow-from-${other.name}`, `allow-from-${other.name}`, {
      podSelector: {},
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: other.namespace } } }], ports: tcpPorts }],
    });
    other.policy(other, `allow-to-${this.name}`, `allow-to-${this.name}`, {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: this.namespace } } }], ports: tcpPorts }],
    });
    this.flows.push({ segment: other, ports: sortedPorts });
  }

  /** The segment as the platform config records it. */
  toConfig(): SegmentConfig {
    return {
      name: this.name,
      namespace: this.namespace,
      defaultDenyIngress: true,
      defaultDenyEgress: true,
      allowedFrom: this.flows.map((f) => ({ segment: f.segment.name, ports: [...f.ports] })),
      egressCidrs: [...this.egressCidrs],
    };
  }

  private policy(scope: NetworkSegment, id: string, name: string, spec: NetworkPolicyV1Spec): NetworkPolicyV1 {
    return new NetworkPolicyV1(scope, id, {
      metadata: { name, namespace: scope.namespace, labels: { ...FabricStack.of(scope).labelsFor("network-policy", name), "gpufabric.dev/segment": scope.name } },
      spec,
      dependsOn: [scope.namespaceResource],
    });
  }
}
