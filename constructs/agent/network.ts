/**
 * How callers reach an agent: its ClusterIP Service, and the NetworkPolicies that open the segments'
 * default-deny to it, only from the allowed segments and only on the API port.
 */
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import type { Construct } from "constructs";
import type { NetworkSegment } from "../network-segment.ts";
import type { AgentMetadata } from "./metadata.ts";
import { AGENT_PORT } from "./paths.ts";

export interface AgentNetworkProps {
  readonly meta: AgentMetadata;
  readonly serviceName: string;
  /** Segments whose pods may call the API; the agent's own included. */
  readonly allowedSegments: readonly NetworkSegment[];
}

/** The port of the agent's Service (HTTPS); it forwards to AGENT_PORT. */
export const API_SERVICE_PORT = 443;

export class AgentNetwork {
  readonly service: ServiceV1;
  readonly servicePort = API_SERVICE_PORT;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: AgentNetworkProps) {
    const { meta } = props;
    const selector = { ...meta.selector };
    this.service = new ServiceV1(scope, "Service", {
      metadata: meta.of(props.serviceName),
      spec: {
        type: "ClusterIP",
        selector,
        port: [{ name: "https", port: API_SERVICE_PORT, targetPort: String(AGENT_PORT), protocol: "TCP" }],
      },
    });

    // The segment's default-deny blocks everything; admit the allowed segments to the API port, and let
    // their pods (whose egress is default-deny too) reach it.
    const ports = [{ port: String(AGENT_PORT), protocol: "TCP" }];
    new NetworkPolicyV1(scope, "ApiIngress", {
      metadata: meta.of(`${meta.name}-api-ingress`, "network-policy"),
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ["Ingress"],
        ingress: [{ from: props.allowedSegments.map((s) => ({ namespaceSelector: { matchLabels: namespaceLabel(s.namespace) } })), ports }],
      },
    });
    for (const s of props.allowedSegments) {
      new NetworkPolicyV1(scope, `ApiEgressFrom-${s.name}`, {
        metadata: { name: `allow-egress-to-${meta.name}`, namespace: s.namespace, labels: meta.foreignLabels("network-policy") },
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [{ to: [{ namespaceSelector: { matchLabels: namespaceLabel(meta.namespace) }, podSelector: { matchLabels: selector } }], ports }],
        },
      });
    }
  }
}

/** Segments without repeats (by namespace), first occurrence kept. */
export function uniqueSegments(segments: readonly NetworkSegment[]): NetworkSegment[] {
  const seen = new Set<string>();
  return segments.filter((s) => (seen.has(s.namespace) ? false : (seen.add(s.namespace), true)));
}

function namespaceLabel(namespace: string): Record<string, string> {
  return { "kubernetes.io/metadata.name": namespace };
}
