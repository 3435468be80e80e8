import { describe, expect, it } from "vitest";
import { allRules, resourcesFromTerraformJson, ruleById, runChecks, PACK_IDS } from "../../policies/index.ts";
import { agentPod, editConfig, residency, securePlatform, type Doc } from "./support/platform.ts";

/** A cluster section as WorkflowDeployment writes it by default: verify-full, two control planes. */
const withCluster = (overrides: Record<string, unknown> = {}) => (doc: Doc) =>
  editConfig(doc, (c) => (c.cluster = { controlPlaneReplicas: 2, databaseSslMode: "verify-full", ...overrides }));

/** Rules about cluster mode judge only configs with a cluster section: the secure platform gets a compliant one for them. */
const setups: Record<string, (doc: Doc) => void> = { "GF-CLU-001": withCluster(), "GF-CLU-002": withCluster() };

/** One way to break each rule, and the attribute path the finding must point at. */
const breakers: Record<string, { path: string; break: (doc: Doc) => void }> = {
  "GF-NET-001": { path: "metadata.name", break: (d) => (d.resource.kubernetes_network_policy_v1!.default_deny!.spec.policy_types = ["Egress"]) },
  "GF-NET-002": { path: "metadata.name", break: (d) => (d.resource.kubernetes_network_policy_v1!.default_deny!.spec.policy_types = ["Ingress"]) },
  "GF-NET-003": {
    path: "spec.template.metadata.labels",
    break: (d) => {
      d.resource.kubernetes_network_policy_v1!.default_deny!.spec.pod_selector = { match_labels: { app: "other" } };
      d.resource.kubernetes_network_policy_v1!.egress_allow!.spec.pod_selector = { match_expressions: [{ key: "app.kubernetes.io/name", operator: "NotIn", values: ["gpufabric-agent"] }] };
    },
  },
  "GF-NET-004": { path: "spec.type", break: (d) => (agentPod(d).spec.volume = agentPod(d).spec.volume.filter((v: any) => v.name !== "tls")) },
  "GF-NET-005": { path: "spec.egress[0].to[0].ip_block.cidr", break: (d) => (d.resource.kubernetes_network_policy_v1!.egress_allow!.spec.egress[0].to[0].ip_block.cidr = "0.0.0.0/0") },
  "GF-NS-001": { path: 'metadata.labels["pod-security.kubernetes.io/enforce"]', break: (d) => (d.resource.kubernetes_namespace_v1!.team_a!.metadata.labels["pod-security.kubernetes.io/enforce"] = "baseline") },
  "GF-POD-001": { path: "spec.template.spec.container[0].security_context.run_as_user", break: (d) => (agentPod(d).container.security_context = { ...agentPod(d).container.security_context, run_as_user: 0 }) },
  "GF-POD-002": { path: "spec.template.spec.container[0].security_context.read_only_root_filesystem", break: (d) => delete agentPod(d).container.security_context.read_only_root_filesystem },
  "GF-POD-003": { path: "spec.template.spec.container[0].security_context.allow_privilege_escalation", break: (d) => (agentPod(d).container.security_context.allow_privilege_escalation = true) },
  "GF-POD-004": { path: "spec.template.spec.container[0].security_context.capabilities.add", break: (d) => (agentPod(d).container.security_context.capabilities = { drop: ["ALL"], add: ["SYS_ADMIN"] }) },
  "GF-POD-005": { path: "spec.template.spec.container[0].security_context.seccomp_profile.type", break: (d) => (agentPod(d).container.security_context.seccomp_profile = { type: "Unconfined" }) },
  "GF-POD-006": { path: "spec.template.spec.container[0].security_context.privileged", break: (d) => (agentPod(d).container.security_context.privileged = true) },
  "GF-POD-007": { path: "spec.template.spec.host_pid", break: (d) => (agentPod(d).spec.host_pid = true) },
  "GF-POD-008": { path: "spec.template.spec.volume[5].host_path", break: (d) => agentPod(d).spec.volume.push({ name: "dev", host_path: { path: "/dev" } }) },
  "GF-POD-009": {
    path: "spec.template.spec.automount_service_account_token",
    break: (d) => {
      delete agentPod(d).spec.automount_service_account_token;
      d.resource.kubernetes_service_account_v1!.agent!.automount_service_account_token = true;
    },
  },
  "GF-POD-010": { path: "spec.template.spec.container[0].image", break: (d) => (agentPod(d).container.image = "gpufabric/agent") },
  "GF-POD-011": { path: "spec.template.spec.container[0].volume_mount[1].read_only", break: (d) => (agentPod(d).container.volume_mount[1].read_only = false) },
  "GF-LIM-001": { path: "spec.template.spec.container[0].resources.limits.cpu", break: (d) => delete agentPod(d).container.resources.limits.cpu },
  "GF-LIM-002": { path: "spec.template.spec.container[0].resources.limits.memory", break: (d) => delete agentPod(d).container.resources.limits.memory },
  "GF-GPU-001": {
    path: "spec.template.spec.container[0].resources.limits.nvidia.com/gpu",
    break: (d) => {
      delete agentPod(d).container.resources.limits["nvidia.com/gpu"];
      agentPod(d).container.resources.requests["nvidia.com/gpu"] = "1";
    },
  },
  "GF-GPU-002": { path: "spec.template.spec.toleration", break: (d) => (agentPod(d).spec.toleration = [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]) },
  "GF-GPU-003": { path: "spec.template.spec.node_selector", break: (d) => (agentPod(d).spec.node_selector = { "kubernetes.io/os": "linux" }) },
  "GF-GPU-004": { path: 'data["platform.json"].pools[0].tenantQuotas.clinic', break: (d) => editConfig(d, (c) => (c.pools[0].sharing = { mode: "time-slicing", replicas: 4 })) },
  "GF-GPU-005": { path: 'data["platform.json"].tenants[1].gpuQuota', break: (d) => editConfig(d, (c) => delete c.pools[0].tenantQuotas.research) },
  "GF-GPU-006": { path: "spec.template.spec.priority_class_name", break: (d) => (agentPod(d).spec.priority_class_name = "system-node-critical") },
  "GF-GPU-007": {
    path: 'data["l4-shared"].sharing.timeSlicing.failRequestsGreaterThanOne',
    break: (d) => (d.resource.kubernetes_config_map_v1!.device_plugin!.data["l4-shared"] = "version: v1\nsharing:\n  timeSlicing:\n    resources:\n      - name: nvidia.com/gpu\n        replicas: 4\n"),
  },
  "GF-GPU-008": { path: "spec.template.spec.priority_class_name", break: (d) => (agentPod(d).spec.priority_class_name = "undeclared") },
  "GF-GPU-009": { path: "spec.template.spec.container[0].resources.limits.nvidia.com/gpu", break: (d) => (agentPod(d).container.resources.limits["nvidia.com/gpu"] = "3") },
  "GF-STO-001": {
    path: "parameters",
    break: (d) => {
      d.resource.kubernetes_storage_class_v1!.hot!.parameters = { type: "gp3" };
      editConfig(d, (c) => (c.tiers[0].encrypted = false));
    },
  },
  "GF-STO-002": { path: 'data["platform.json"].tiers[0].retentionDays', break: (d) => editConfig(d, (c) => (c.tiers[0].retentionDays = null)) },
  "GF-AGT-001": { path: "spec.template.spec.volume", break: (d) => (agentPod(d).spec.volume = agentPod(d).spec.volume.filter((v: any) => v.name !== "audit")) },
  "GF-AGT-002": { path: "spec.template.spec.container[0].volume_mount[0].read_only", break: (d) => (agentPod(d).container.volume_mount[0].read_only = false) },
  "GF-AGT-003": { path: "metadata", break: (d) => (d.resource.kubernetes_pod_disruption_budget_v1!.agent!.spec.selector.match_labels = { app: "other" }) },
  "GF-AGT-005": { path: "spec.template.spec.container[1].volume_mount[0]", break: (d) => (agentPod(d).runner.volume_mount = [{ name: "keyring", mount_path: "/keys", read_only: true }]) },
  "GF-AGT-004": { path: "spec.template.spec.volume", break: (d) => (agentPod(d).spec.volume = agentPod(d).spec.volume.filter((v: any) => v.name !== "tokens")) },
  "GF-RBAC-001": { path: "rule[0].verbs", break: (d) => (d.resource.kubernetes_role_v1!.reader!.rule[0].verbs = ["*"]) },
  "GF-RBAC-002": { path: "role_ref.name", break: (d) => (d.resource.kubernetes_role_binding_v1!.reader!.role_ref = { api_group: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" }) },
  "GF-GEO-001": { path: 'data["platform.json"].platform.region', break: (d) => editConfig(d, (c) => (c.platform.region = "us-east-1")) },
  "GF-GEO-002": {
    path: "allowed_topologies[0].match_label_expressions[0].values[1]",
    break: (d) => (d.resource.kubernetes_storage_class_v1!.hot!.allowed_topologies.match_label_expressions.values = ["eu-west-1a", "us-east-1a"]),
  },
  "GF-CFG-001": { path: 'data["platform.json"]', break: (d) => editConfig(d, (c) => (c.version = 2)) },
  "GF-CLU-001": { path: 'data["platform.json"].cluster.databaseSslMode', break: withCluster({ databaseSslMode: "require" }) },
  "GF-CLU-002": { path: 'data["platform.json"].cluster.controlPlaneReplicas', break: withCluster({ controlPlaneReplicas: 1 }) },
};

function check(doc: Doc, ruleId: string) {
  const rule = ruleById(ruleId)!;
  return runChecks(resourcesFromTerraformJson(doc), { packs: [...PACK_IDS], rules: [rule], residency, defaultClassification: "phi" });
}

describe("the secure platform", () => {
  it("passes every rule of every pack", () => {
    const report = runChecks(resourcesFromTerraformJson(securePlatform()), { packs: [...PACK_IDS], residency, defaultClassification: "phi" });
    expect(report.findings).toEqual([]);
    expect(report.rules).toHaveLength(allRules.length);
  });
});

describe("every rule has a compliant and a non-compliant case", () => {
  it("covers each rule, and there are at least 25", () => {
    expect(allRules.length).toBeGreaterThanOrEqual(25);
    expect(Object.keys(breakers).sort()).toEqual(allRules.map((r) => r.id).sort());
  });

  for (const rule of allRules) {
    describe(`${rule.id} ${rule.name}`, () => {
      it("is compliant on the secure platform", () => {
        const doc = securePlatform();
        setups[rule.id]?.(doc);
        const report = check(doc, rule.id);
        expect(report.findings).toEqual([]);
        expect(report.evaluations.filter((e) => e.status === "compliant").length).toBeGreaterThan(0);
      });

      it("fires, at the offending attribute, once it is broken", () => {
        const doc = securePlatform();
        breakers[rule.id]!.break(doc);
        const report = check(doc, rule.id);
        expect(report.findings.length).toBeGreaterThan(0);
        expect(report.findings.every((f) => f.ruleId === rule.id && f.level === rule.level && f.remediation === rule.remediation)).toBe(true);
        expect(report.findings.map((f) => f.attributePath)).toContain(breakers[rule.id]!.path);
      });
    });
  }
});

describe("rule metadata", () => {
  it("has unique ids and names and complete texts", () => {
    expect(new Set(allRules.map((r) => r.id)).size).toBe(allRules.length);
    expect(new Set(allRules.map((r) => r.name)).size).toBe(allRules.length);
    for (const r of allRules) {
      expect(r.id).toMatch(/^GF-[A-Z]+-\d{3}$/);
      expect(r.title.length).toBeGreaterThan(10);
      expect(r.rationale.length).toBeGreaterThan(40);
      expect(r.remediation.length).toBeGreaterThan(20);
      expect(r.controls.length).toBeGreaterThan(0);
      expect(r.kinds.length).toBeGreaterThan(0);
    }
  });
});
