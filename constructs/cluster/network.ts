/**
 * The NetworkPolicies of a cluster, on top of the segment's default-deny and the API's own policies
 * (agent/network.ts): workers reach the control planes' API port and DNS, and accept nothing; control
 * planes reach the database's port and DNS, and accept the workers. NetworkPolicies add up, so what the
 * segment allows every pod (its egressCidrs, flows to other segments) still applies: give the cluster a
 * segment of its own for exactly this shape.
 */
import { NetworkPolicyV1, type NetworkPolicyV1SpecEgressTo } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import type { Construct } from "constructs";
import type { AgentMetadata } from "../agent/metadata.ts";
import { AGENT_PORT } from "../agent/paths.ts";
import type { ResolvedCluster } from "./props.ts";

const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

export interface ClusterNetworkProps {
  readonly controlPlane: AgentMetadata;
  readonly workers: AgentMetadata;
  readonly cluster: ResolvedCluster;
}

export class ClusterNetwork {
  readonly workerPolicy: NetworkPolicyV1;
  readonly controlPlaneEgress: NetworkPolicyV1;
  readonly controlPlaneFromWorkers: NetworkPolicyV1;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: ClusterNetworkProps) {
    const cp = { ...props.controlPlane.selector };
    const workers = { ...props.workers.selector };
    const api = [{ protocol: "TCP", port: String(AGENT_PORT) }];
    // Workers resolve the Service's name; control planes, the database's host.
    const dns = {
      to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: "kube-system" } } }],
      ports: [
        { protocol: "UDP", port: "53" },
        { protocol: "TCP", port: "53" },
      ],
    };
    const meta = props.workers;

    this.workerPolicy = new NetworkPolicyV1(scope, "WorkerNetwork", {
      metadata: meta.of(`${meta.name}-worker`, "network-policy"),
      spec: {
        podSelector: { matchLabels: workers },
        // Ingress listed with no rule: nothing may connect to a worker.
        policyTypes: ["Ingress", "Egress"],
        egress: [{ to: [{ podSelector: { matchLabels: cp } }], ports: api }, dns],
      },
    });

    const { database } = props.cluster;
    this.controlPlaneEgress = new NetworkPolicyV1(scope, "ControlPlaneEgress", {
      metadata: props.controlPlane.of(`${meta.name}-control-plane-egress`, "network-policy"),
      spec: {
        podSelector: { matchLabels: cp },
        policyTypes: ["Egress"],
        egress: [{ ...databasePeers(database), ports: [{ protocol: "TCP", port: String(database.port) }] }, dns, ...apiServerEgress(props.cluster)],
      },
    });

    // Also when the deployment's own segment is not among the API's allowed segments.
    this.controlPlaneFromWorkers = new NetworkPolicyV1(scope, "ControlPlaneFromWorkers", {
      metadata: props.controlPlane.of(`${meta.name}-control-plane-from-workers`, "network-policy"),
      spec: {
        podSelector: { matchLabels: cp },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: { matchLabels: workers } }], ports: api }],
      },
    });
  }
}

/**
 * The Kubernetes API server, for the elastic scaler (provider kubernetes): its CIDR when given, else any
 * address on the ports API servers listen on (443 behind the `kubernetes` Service, 6443 on the endpoints
 * that NetworkPolicies see after the Service's translation).
 */
function apiServerEgress(cluster: ResolvedCluster): Array<{ to?: NetworkPolicyV1SpecEgressTo[]; ports: Array<{ protocol: string; port: string }> }> {
  const e = cluster.config.elasticity;
  if (!e.enabled || e.provider.type !== "kubernetes") return [];
  const cidr = cluster.elasticity?.apiServerCidr;
  return [{ ...(cidr !== undefined && { to: [{ ipBlock: { cidr } }] }), ports: [{ protocol: "TCP", port: "443" }, { protocol: "TCP", port: "6443" }] }];
}

/** Where the database is: a CIDR, a namespace (and its pods), or, when neither is given, any address (the port still limits it). */
function databasePeers(database: ResolvedCluster["database"]): { to?: NetworkPolicyV1SpecEgressTo[] } {
  if (database.cidr !== undefined) return { to: [{ ipBlock: { cidr: database.cidr } }] };
  if (database.namespace !== undefined) {
    return {
      to: [
        {
          namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: database.namespace } },
          ...(database.podLabels !== undefined ? { podSelector: { matchLabels: { ...database.podLabels } } } : {}),
        },
      ],
    };
  }
  return {};
}
