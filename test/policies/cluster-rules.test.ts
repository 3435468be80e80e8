/** The cluster-mode rules (GF-CLU-001 database TLS, GF-CLU-002 control-plane replicas), and GF-AGT-005 on control planes. */
import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { CompliancePolicy, FabricStack, GpuModel, GpuPool, NetworkSegment, StorageTier, Tenant, Workflow, WorkflowDeployment, type ClusterProps } from "../../constructs/index.ts";
import { resourcesFromTerraformJson, ruleById, rulesOf, runChecks, PACK_IDS } from "../../policies/index.ts";
import { agentPod, editConfig, residency, securePlatform, type Doc } from "./support/platform.ts";

function check(doc: unknown, ruleId: string) {
  return runChecks(resourcesFromTerraformJson(doc), { packs: [...PACK_IDS], rules: [ruleById(ruleId)!], residency, defaultClassification: "phi" });
}

function withCluster(doc: Doc, cluster: Record<string, unknown>): Doc {
  editConfig(doc, (c) => (c.cluster = cluster));
  return doc;
}

/** A platform with one cluster-mode WorkflowDeployment, synthesized to Terraform JSON. */
function clusterPlatform(cluster: Partial<ClusterProps>): unknown {
  const stack = new FabricStack(Testing.app(), "lab", { platformName: "lab", region: "eu-central" });
  const segment = new NetworkSegment(stack, "Batch", { name: "batch" });
  const tenant = new Tenant(stack, "Alpha", { name: "alpha", segment });
  const pool = new GpuPool(stack, "Pool", { name: "h100", model: GpuModel.H100_80GB, nodes: 2, gpusPerNode: 8, tenantQuotas: [{ tenant, gpus: 16 }] });
  const tier = new StorageTier(stack, "Shared", { name: "shared", tierClass: "warm", provisioner: "rook-ceph.cephfs.csi.ceph.com", accessModes: ["ReadWriteMany"], encryption: { parameters: { encrypted: "true" } } });
  const workflow = Workflow.native({
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: "render" },
    spec: { stages: [{ id: "render", resources: { gpus: 1, vram: "8Gi" }, run: { command: ["node", "render.mjs"] } }] },
  });
  new WorkflowDeployment(stack, "Pipeline", { name: "pipeline", pool, tier, segment, tenants: [tenant], workflows: [workflow], cluster: { database: { secretName: "pipeline-database" }, ...cluster } });
  return JSON.parse(Testing.synth(stack));
}

describe("GF-CLU-001 cluster-database-tls", () => {
  const RULE = "GF-CLU-001";

  it("is in the hipaa and soc2 packs", () => {
    expect(new Set(ruleById(RULE)!.controls.map((c) => c.pack))).toEqual(new Set(["hipaa", "soc2"]));
    expect(rulesOf(["hipaa"]).map((r) => r.id)).toContain(RULE);
    expect(rulesOf(["soc2"]).map((r) => r.id)).toContain(RULE);
  });

  it("does not apply to a single agent (no cluster section)", () => {
    expect(check(securePlatform(), RULE).evaluations).toEqual([]);
  });

  it("passes verify-full, the WorkflowDeployment's default", () => {
    const report = check(clusterPlatform({}), RULE);
    expect(report.findings).toEqual([]);
    expect(report.evaluations.map((e) => e.status)).toEqual(["compliant"]);
  });

  it("fires on every weaker sslmode, at the config field", () => {
    for (const mode of ["verify-ca", "require", "disable"] as const) {
      const findings = check(clusterPlatform({ database: { secretName: "pipeline-database", sslMode: mode } }), RULE).findings;
      expect(findings.map((f) => f.attributePath), mode).toEqual(['data["platform.json"].cluster.databaseSslMode']);
      expect(findings[0]!.message).toContain(`sslmode '${mode}'`);
      expect(findings[0]!.level).toBe("error");
    }
  });

  it("fails the synth of a stack whose hipaa policy meets a cluster without verify-full", () => {
    const stack = new FabricStack(Testing.app(), "lab", { platformName: "lab", region: "eu-central" });
    const segment = new NetworkSegment(stack, "Batch", { name: "batch" });
    const tenant = new Tenant(stack, "Alpha", { name: "alpha", segment });
    const pool = new GpuPool(stack, "Pool", { name: "h100", model: GpuModel.H100_80GB, nodes: 1, gpusPerNode: 8, tenantQuotas: [{ tenant, gpus: 8 }] });
    const tier = new StorageTier(stack, "Shared", { name: "shared", tierClass: "warm", provisioner: "rook-ceph.cephfs.csi.ceph.com", accessModes: ["ReadWriteMany"], encryption: { parameters: { encrypted: "true" } } });
    new WorkflowDeployment(stack, "Pipeline", { pool, tier, segment, tenants: [tenant], workflows: [], cluster: { database: { secretName: "db", sslMode: "require" } } });
    const policy = new CompliancePolicy(stack, "Compliance", { packs: ["hipaa"] });
    expect(policy.check().findings.filter((f) => f.ruleId.startsWith("GF-CLU")).map((f) => f.ruleId)).toEqual(["GF-CLU-001"]);
  });
});

describe("GF-CLU-002 cluster-control-plane-replicas", () => {
  const RULE = "GF-CLU-002";

  it("is in the soc2 pack only", () => {
    expect(ruleById(RULE)!.controls.map((c) => c.pack)).toEqual(["soc2"]);
    expect(rulesOf(["hipaa", "gpu-baseline", "gdpr-residency"]).map((r) => r.id)).not.toContain(RULE);
  });

  it("does not apply to a single agent", () => {
    expect(check(securePlatform(), RULE).evaluations).toEqual([]);
  });

  it("passes two or more replicas, and fires on one, at the config field", () => {
    expect(check(clusterPlatform({}), RULE).evaluations.map((e) => e.status)).toEqual(["compliant"]);
    expect(check(clusterPlatform({ controlPlaneReplicas: 3 }), RULE).findings).toEqual([]);
    const findings = check(clusterPlatform({ controlPlaneReplicas: 1 }), RULE).findings;
    expect(findings.map((f) => f.attributePath)).toEqual(['data["platform.json"].cluster.controlPlaneReplicas']);
    expect(findings[0]!.message).toMatch(/^1 control-plane replica/);
  });
});

describe("GF-AGT-005 on cluster control planes", () => {
  const RULE = "GF-AGT-005";

  it("leaves the control planes alone: they hold the agent's Secrets and start no stage", () => {
    const report = check(clusterPlatform({}), RULE);
    expect(report.findings).toEqual([]);
    expect(report.evaluations).toEqual([]);
  });

  it("still judges a single-container agent without a cluster section that starts stages itself", () => {
    const doc = securePlatform();
    agentPod(doc).spec.container.splice(1, 1);
    editConfig(doc, (c) => delete c.isolation);
    expect(check(doc, RULE).findings.length).toBeGreaterThan(0);
    // The same pod as a cluster's control plane runs no stage.
    withCluster(doc, { controlPlaneReplicas: 2 });
    expect(check(doc, RULE).evaluations).toEqual([]);
  });

  it("still judges a runner container in a cluster's pod", () => {
    const doc = withCluster(securePlatform(), { controlPlaneReplicas: 2 });
    agentPod(doc).runner.volume_mount = [{ name: "keyring", mount_path: "/keys", read_only: true }];
    expect(check(doc, RULE).findings.map((f) => f.message)).toEqual([expect.stringMatching(/container 'runner' runs stages and mounts Secret 'fabric-keyring'/)]);
  });
});

describe("a cluster-mode deployment under every pack", () => {
  it("passes with its defaults where the segment's GPU quota covers the whole pool (2 workers × 8 GPUs)", () => {
    const report = runChecks(resourcesFromTerraformJson(clusterPlatform({})), { packs: [...PACK_IDS], defaultClassification: "internal" });
    expect(report.findings.map((f) => `${f.ruleId} ${f.message}`)).toEqual([]);
  });
});
