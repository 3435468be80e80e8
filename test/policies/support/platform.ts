/**
 * A small platform written as Terraform JSON that passes every rule: the tests break one thing at a
 * time in a copy and expect exactly the rule about that thing to fire.
 */
import type { Residency } from "../../../policies/index.ts";

export type Doc = { resource: Record<string, Record<string, Record<string, any>>> };

const NS = "team-a";
const SECURE_CONTAINER_CONTEXT = {
  run_as_non_root: true,
  run_as_user: 10001,
  read_only_root_filesystem: true,
  allow_privilege_escalation: false,
  capabilities: { drop: ["ALL"] },
  seccomp_profile: { type: "RuntimeDefault" },
};

export const residency: Residency = {
  allowedRegions: { phi: ["eu-west-1"], pii: ["eu-west-1", "eu-central-1"] },
  allowedZones: { phi: ["eu-west-1a", "eu-west-1b"] },
};

export function platformConfig(): Record<string, unknown> {
  const secret = (name: string, dir: string) => ({ secretName: `fabric-${name}`, mountPath: `/etc/gpufabric/${dir}` });
  return {
    version: 1,
    platform: { name: "lab", region: "eu-west-1", zones: ["eu-west-1a"] },
    deployment: { name: "fabric", namespace: NS, pool: "h100", tier: "hot", segment: "team-a", listen: { host: "0.0.0.0", port: 8443 }, dataDir: "/var/lib/gpufabric", image: "gpufabric/agent:0.1.0" },
    pools: [
      {
        name: "h100",
        gpu: { model: "H100-80GB", product: "NVIDIA-H100-80GB-HBM3", memoryMiB: 81559 },
        nodes: 1,
        gpusPerNode: 2,
        sharing: { mode: "exclusive" },
        devices: [
          { id: "h100-n0-g0", node: "h100-n0", index: 0, memoryMiB: 81559 },
          { id: "h100-n0-g1", node: "h100-n0", index: 1, memoryMiB: 81559 },
        ],
        nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
        priorityClasses: { interactive: "h100-interactive", batch: "h100-batch" },
        tenantQuotas: { clinic: 2, research: 1 },
      },
    ],
    tiers: [{ name: "hot", class: "hot", storageClassName: "hot", mountPath: "/var/lib/gpufabric/tiers/hot", retentionDays: 30, encrypted: true, encryptionRequired: true, dataClassification: "phi" }],
    segments: [{ name: "team-a", namespace: NS, defaultDenyIngress: true, defaultDenyEgress: true, allowedFrom: [], egressCidrs: [] }],
    tenants: [
      { name: "clinic", weight: 2, gpuQuota: null, vramQuotaMiB: null, roles: [], dataClassification: "phi", isolation: "dedicated" },
      { name: "research", weight: 1, gpuQuota: null, vramQuotaMiB: null, roles: [], dataClassification: "internal", isolation: "shared" },
    ],
    workflows: [],
    scheduler: { headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 300 },
    security: {
      auth: { required: true, tokens: secret("tokens", "tokens") },
      encryption: { atRest: true, algorithm: "AES-256-GCM", keyring: secret("keyring", "keyring") },
      audit: { signingKey: secret("audit-signing", "audit-signing"), sink: { type: "volume", claimName: "fabric-audit", mountPath: "/var/lib/gpufabric/audit" }, checkpointEvery: 1000, checkpointIntervalSeconds: 300 },
      tls: { enabled: true, certificate: secret("tls", "tls") },
    },
    // Stages run in the pod's runner container, which holds no Secret (GF-AGT-005).
    isolation: { mode: "runner" },
    runtimeRules: [],
  };
}

const labels = (component: string) => ({
  "app.kubernetes.io/part-of": "gpufabric",
  "app.kubernetes.io/managed-by": "cdktf",
  "gpufabric.dev/platform": "lab",
  "gpufabric.dev/region": "eu-west-1",
  "app.kubernetes.io/name": component === "agent" ? "gpufabric-agent" : component,
  "app.kubernetes.io/instance": "fabric",
  "app.kubernetes.io/component": component,
});

export function securePlatform(): Doc {
  const agentPodLabels = { "app.kubernetes.io/name": "gpufabric-agent", "app.kubernetes.io/instance": "fabric", "app.kubernetes.io/component": "agent", "app.kubernetes.io/part-of": "gpufabric" };
  const secretVolume = (name: string) => ({ name, secret: { secret_name: `fabric-${name}` } });
  const mount = (name: string, readOnly: boolean) => ({ name, mount_path: `/etc/gpufabric/${name}`, read_only: readOnly });
  return structuredClone({
    resource: {
      kubernetes_namespace_v1: {
        team_a: {
          metadata: {
            name: NS,
            labels: {
              ...labels("segment"),
              "gpufabric.dev/segment": "team-a",
              "pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/audit": "restricted",
              "pod-security.kubernetes.io/warn": "restricted",
            },
          },
        },
      },
      kubernetes_network_policy_v1: {
        default_deny: { metadata: { name: "default-deny", namespace: "${kubernetes_namespace_v1.team_a.metadata[0].name}" }, spec: { pod_selector: {}, policy_types: ["Ingress", "Egress"] } },
        egress_allow: {
          metadata: { name: "egress-allow", namespace: NS },
          spec: { pod_selector: {}, policy_types: ["Egress"], egress: [{ to: [{ ip_block: { cidr: "10.20.0.0/16" } }] }] },
        },
      },
      kubernetes_priority_class_v1: {
        interactive: { metadata: { name: "h100-interactive" }, value: 100000, preemption_policy: "PreemptLowerPriority" },
        batch: { metadata: { name: "h100-batch" }, value: 1000, preemption_policy: "Never" },
      },
      kubernetes_resource_quota_v1: {
        clinic: {
          metadata: { name: "h100-clinic", namespace: NS },
          spec: {
            hard: { "requests.nvidia.com/gpu": "2" },
            scope_selector: { match_expression: [{ scope_name: "PriorityClass", operator: "In", values: ["h100-interactive", "h100-batch"] }] },
          },
        },
      },
      kubernetes_service_account_v1: { agent: { metadata: { name: "fabric", namespace: NS }, automount_service_account_token: false } },
      kubernetes_deployment_v1: {
        agent: {
          metadata: { name: "fabric", namespace: NS, labels: labels("agent") },
          spec: {
            replicas: 1,
            selector: { match_labels: agentPodLabels },
            template: {
              metadata: { labels: agentPodLabels },
              spec: {
                service_account_name: "fabric",
                automount_service_account_token: false,
                priority_class_name: "h100-interactive",
                node_selector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
                toleration: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
                security_context: { run_as_non_root: true, seccomp_profile: { type: "RuntimeDefault" } },
                container: [
                  {
                    name: "agent",
                    image: "gpufabric/agent:0.1.0",
                    security_context: SECURE_CONTAINER_CONTEXT,
                    resources: { limits: { cpu: "4", memory: "16Gi", "nvidia.com/gpu": "2" }, requests: { cpu: "2", memory: "8Gi" } },
                    volume_mount: [mount("keyring", true), mount("tokens", true), mount("audit-signing", true), mount("tls", true), { name: "audit", mount_path: "/var/lib/gpufabric/audit" }],
                  },
                  {
                    name: "runner",
                    image: "gpufabric/agent:0.1.0",
                    args: ["runner", "--socket", "/var/run/gpufabric-runner/runner.sock"],
                    // A copy: structuredClone keeps shared objects shared, and tests break one container at a time.
                    security_context: structuredClone(SECURE_CONTAINER_CONTEXT),
                    resources: { limits: { cpu: "8", memory: "32Gi" }, requests: { cpu: "2", memory: "8Gi" } },
                  },
                ],
                volume: [
                  secretVolume("keyring"),
                  secretVolume("tokens"),
                  secretVolume("audit-signing"),
                  secretVolume("tls"),
                  { name: "audit", persistent_volume_claim: { claim_name: "fabric-audit" } },
                ],
              },
            },
          },
        },
      },
      kubernetes_pod_disruption_budget_v1: {
        agent: { metadata: { name: "fabric", namespace: NS }, spec: { min_available: "1", selector: { match_labels: { "app.kubernetes.io/name": "gpufabric-agent" } } } },
      },
      kubernetes_service_v1: {
        agent: { metadata: { name: "fabric", namespace: NS }, spec: { type: "LoadBalancer", selector: { "app.kubernetes.io/name": "gpufabric-agent" }, port: [{ port: 443, target_port: "8443" }] } },
      },
      kubernetes_storage_class_v1: {
        hot: {
          metadata: { name: "hot", labels: { ...labels("tier"), "gpufabric.dev/tier": "hot", "gpufabric.dev/data-classification": "phi" } },
          storage_provisioner: "ebs.csi.aws.com",
          reclaim_policy: "Retain",
          volume_binding_mode: "WaitForFirstConsumer",
          parameters: { type: "gp3", encrypted: "true" },
          allowed_topologies: { match_label_expressions: { key: "topology.kubernetes.io/zone", values: ["eu-west-1a"] } },
        },
      },
      kubernetes_config_map_v1: {
        platform: { metadata: { name: "fabric-platform", namespace: NS, labels: labels("platform-config") }, data: { "platform.json": JSON.stringify(platformConfig()) } },
        device_plugin: {
          metadata: { name: "l4-device-plugin", namespace: "gpu-operator", labels: { "gpufabric.dev/pool": "l4" } },
          data: { "l4-shared": "version: v1\nsharing:\n  timeSlicing:\n    failRequestsGreaterThanOne: true\n    resources:\n      - name: nvidia.com/gpu\n        replicas: 4\n" },
        },
      },
      kubernetes_role_v1: { reader: { metadata: { name: "reader", namespace: NS }, rule: [{ api_groups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }] } },
      kubernetes_role_binding_v1: {
        reader: { metadata: { name: "reader", namespace: NS }, role_ref: { api_group: "rbac.authorization.k8s.io", kind: "Role", name: "reader" }, subject: [{ kind: "Group", name: "ops", api_group: "rbac.authorization.k8s.io" }] },
      },
    },
  });
}

/** The agent's pod spec, its first container (the agent's) and its second (the runner's, where stages run), to break in tests. */
export function agentPod(doc: Doc): { spec: any; container: any; runner: any } {
  const spec = doc.resource.kubernetes_deployment_v1!.agent!.spec.template.spec;
  return { spec, container: spec.container[0], runner: spec.container[1] };
}

/** Edits the platform config inside the ConfigMap. */
export function editConfig(doc: Doc, edit: (config: any) => void): void {
  const cm = doc.resource.kubernetes_config_map_v1!.platform!;
  const config = JSON.parse(cm.data["platform.json"]);
  edit(config);
  cm.data["platform.json"] = JSON.stringify(config);
}
