import { Testing } from "cdktf";
import { ClusterRoleBindingV1 } from "@cdktf/provider-kubernetes/lib/cluster-role-binding-v1/index.js";
import { Construct } from "constructs";
import { describe, expect, it } from "vitest";
import {
  Compliance,
  CompliancePolicy,
  FabricStack,
  GpuModel,
  GpuPool,
  GpuSharing,
  NetworkSegment,
  StorageTier,
  Tenant,
  WorkflowDeployment,
  type CompliancePolicyProps,
} from "../../constructs/index.ts";
import { PACK_IDS, resourcesFromTerraformJson } from "../../policies/index.ts";
import { CONFIG_MAP_KEY, ValidationError, parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";

interface Options {
  sharing?: GpuSharing;
  policy?: Partial<CompliancePolicyProps>;
}

/** A small hospital platform: one phi tenant on its own pool, encrypted tier with retention, in eu-west-1. */
function hospital(options: Options = {}) {
  const stack = new FabricStack(Testing.app(), "hospital", { region: "eu-west-1", zones: ["eu-west-1a"] });
  const segment = new NetworkSegment(stack, "Clinical", { name: "clinical" });
  const clinic = new Tenant(stack, "Clinic", { segment, dataClassification: "phi" });
  const pool = new GpuPool(stack, "Pool", {
    name: "a100",
    model: GpuModel.A100_80GB,
    nodes: 1,
    gpusPerNode: 4,
    sharing: options.sharing ?? GpuSharing.exclusive(),
    tenantQuotas: [{ tenant: clinic, gpus: 4 }],
  });
  const tier = new StorageTier(stack, "Hot", {
    name: "hot",
    tierClass: "hot",
    provisioner: "ebs.csi.aws.com",
    encryption: { parameters: { encrypted: "true", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/clinical" } },
    retentionDays: 30,
    dataClassification: "phi",
  });
  const deployment = new WorkflowDeployment(stack, "Imaging", { name: "imaging", pool, tier, segment, tenants: [clinic], workflows: [] });
  const policy = new CompliancePolicy(stack, "Compliance", {
    packs: [...PACK_IDS],
    dataClassification: "phi",
    allowedRegions: { phi: ["eu-west-1"] },
    ...options.policy,
  });
  return { stack, segment, deployment, policy };
}

function platformConfigOf(stack: FabricStack): PlatformConfig {
  const json = JSON.parse(Testing.synth(stack)) as { resource: Record<string, Record<string, any>> };
  const cm = Object.values(json.resource.kubernetes_config_map_v1 ?? {}).find((r) => r.data?.[CONFIG_MAP_KEY]);
  return parsePlatformConfig(JSON.parse(cm!.data[CONFIG_MAP_KEY]));
}

/** An ops team's binding to cluster-admin, under a construct of its own. */
function opsBinding(scope: Construct): Construct {
  const ops = new Construct(scope, "Ops");
  new ClusterRoleBindingV1(ops, "Admin", {
    metadata: { name: "ops-admin" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subject: [{ kind: "Group", name: "ops", apiGroup: "rbac.authorization.k8s.io" }],
  });
  return ops;
}

describe("CompliancePolicy", () => {
  it("lets a secure platform synthesize under every pack", () => {
    const { stack, policy } = hospital();
    expect(() => Testing.synth(stack, true)).not.toThrow();
    const report = policy.check();
    expect(report.findings).toEqual([]);
    expect(report.evaluations.length).toBeGreaterThan(30);
  });

  it("writes the packs' run-time rules into the platform config", () => {
    const { stack } = hospital();
    const ids = platformConfigOf(stack).runtimeRules.map((r) => r.id);
    expect(ids).toEqual(expect.arrayContaining(["hipaa/phi-isolated-gpu", "hipaa/phi-default-deny-segment", "hipaa/phi-encrypted-tier", "gdpr-residency/phi-regions"]));
  });

  it("fails the synth on an error finding, naming the construct path, the rule and the fix", () => {
    const { stack } = hospital();
    opsBinding(stack);
    expect(() => Testing.synth(stack, true)).toThrow(/GF-RBAC-002 error at hospital\/Ops\/Admin .*role_ref\.name.*Fix: Bind a Role/);
  });

  it("fails the synth when a phi tenant shares a time-sliced pool", () => {
    const { stack } = hospital({ sharing: GpuSharing.timeSlicing(4) });
    expect(() => Testing.synth(stack, true)).toThrow(/GF-GPU-004/);
  });

  it("fails the synth when the platform runs outside the allowed regions", () => {
    const { stack } = hospital({ policy: { allowedRegions: { phi: ["eu-central-1"] } } });
    expect(() => Testing.synth(stack, true)).toThrow(/GF-GEO-001 .*region 'eu-west-1' is not allowed for phi data/);
  });

  it("accepts an acknowledged finding, inherited by children, and lists it with its reason", () => {
    const { stack, policy } = hospital();
    const ops = opsBinding(stack);
    Compliance.acknowledge(ops, "GF-RBAC-002", "Break-glass access for the on-call group, reviewed quarterly");
    expect(() => Testing.synth(stack, true)).not.toThrow();
    const report = policy.check();
    expect(report.findings).toEqual([]);
    expect(report.acknowledged).toHaveLength(1);
    expect(report.acknowledged[0]).toMatchObject({
      ruleId: "GF-RBAC-002",
      constructPath: "hospital/Ops/Admin",
      acknowledgement: { reason: "Break-glass access for the on-call group, reviewed quarterly", source: "hospital/Ops" },
    });
  });

  it("writes acknowledgements into the resources' metadata, so checks of cdktf.out see them", () => {
    const { stack } = hospital();
    Compliance.acknowledge(opsBinding(stack), "GF-RBAC-002", "Break-glass access for the on-call group");
    Testing.synth(stack); // runs the aspects
    const binding = resourcesFromTerraformJson(stack.toTerraform()).find((r) => r.type === "kubernetes_cluster_role_binding_v1")!;
    expect(binding.constructPath).toBe("hospital/Ops/Admin");
    expect(binding.acknowledgements).toEqual([{ ruleId: "GF-RBAC-002", reason: "Break-glass access for the on-call group", source: "hospital/Ops" }]);
  });

  it("reports an acknowledgement that matches no finding", () => {
    const { segment, policy } = hospital();
    Compliance.acknowledge(segment, "GF-NET-001", "Kept from an older layout of the cluster");
    expect(policy.check().unusedAcknowledgements).toEqual([expect.objectContaining({ ruleId: "GF-NET-001", target: "hospital/Clinical" })]);
  });

  it("refuses acknowledgements without a real reason or with an unknown rule", () => {
    const { segment } = hospital();
    expect(() => Compliance.acknowledge(segment, "GF-NET-001", "because")).toThrow(/reason: give a reason of at least 10 characters/);
    expect(() => Compliance.acknowledge(segment, "GF-NOPE-001", "a long enough reason")).toThrow(/ruleId: unknown rule 'GF-NOPE-001'/);
  });

  it("validates its props eagerly, naming the prop", () => {
    const stack = new FabricStack(Testing.app(), "s");
    expect(() => new CompliancePolicy(stack, "A", { packs: [] })).toThrow(ValidationError);
    expect(() => new CompliancePolicy(stack, "B", { packs: ["pci" as never] })).toThrow(/packs\[0\]: unknown pack 'pci'/);
    expect(() => new CompliancePolicy(stack, "C", { packs: ["hipaa"], allowedRegions: ["eu-west-1"] })).toThrow(/add it to packs/);
    expect(() => new CompliancePolicy(stack, "D", { packs: ["gdpr-residency"], allowedRegions: { secret: ["x"] } as never })).toThrow(/allowedRegions\.secret/);
  });

  it("applies a plain region list to its classification and every more sensitive one", () => {
    const stack = new FabricStack(Testing.app(), "s");
    const policy = new CompliancePolicy(stack, "P", { packs: ["gdpr-residency"], dataClassification: "confidential", allowedRegions: ["eu-west-1"] });
    expect(Object.keys(policy.allowedRegions).sort()).toEqual(["confidential", "phi", "pii"]);
  });
});
