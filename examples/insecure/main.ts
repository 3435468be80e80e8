/**
 * A deliberately insecure platform: what the compliance packs exist to catch. Synthesizing it fails,
 * listing each finding with its construct path, rule id and fix:
 *
 *   npx tsx examples/insecure/main.ts                    # synth fails with the findings
 *   npx tsx examples/insecure/main.ts --skip-validation  # writes examples/insecure/cdktf.out anyway
 *   node bin/gpufabric.mjs check examples/insecure/cdktf.out --format markdown
 */
import { ClusterRoleBindingV1 } from "@cdktf/provider-kubernetes/lib/cluster-role-binding-v1/index.js";
import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { NamespaceV1 } from "@cdktf/provider-kubernetes/lib/namespace-v1/index.js";
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { RoleV1 } from "@cdktf/provider-kubernetes/lib/role-v1/index.js";
import { App } from "cdktf";
import { fileURLToPath } from "node:url";
import {
  CompliancePolicy,
  FabricStack,
  GpuModel,
  GpuPool,
  GpuSharing,
  NetworkSegment,
  StorageTier,
  Tenant,
  WorkflowDeployment,
  runSynth,
} from "../../constructs/index.ts";

export function defineInsecurePlatform(app: App): { stack: FabricStack; policy: CompliancePolicy } {
  // Health data in a region the residency policy does not allow.
  const stack = new FabricStack(app, "insecure", { platformName: "insecure", region: "us-east-1" });
  const wards = new NetworkSegment(stack, "Wards", { name: "wards" });
  const radiology = new Tenant(stack, "Radiology", { name: "radiology", segment: wards, dataClassification: "phi" });

  // A phi tenant on time-sliced GPUs: no memory isolation from whoever shares the GPU.
  const pool = new GpuPool(stack, "SharedL4", {
    name: "shared-l4",
    model: GpuModel.L4_24GB,
    nodes: 1,
    gpusPerNode: 4,
    sharing: GpuSharing.timeSlicing(4),
    tenantQuotas: [{ tenant: radiology, gpus: 4 }],
  });
  // Health data on unencrypted volumes, kept forever.
  const tier = new StorageTier(stack, "Scans", { name: "scans", tierClass: "hot", provisioner: "ebs.csi.aws.com", dataClassification: "phi" });
  new WorkflowDeployment(stack, "Reading", { name: "reading", pool, tier, segment: wards, tenants: [radiology], workflows: [], gpus: 4 });

  // A model server written by hand: root, writable, every capability, no seccomp, no limits, no GPU taint or node selection.
  new DeploymentV1(stack, "ModelServer", {
    metadata: { name: "model-server", namespace: wards.namespace },
    spec: {
      selector: { matchLabels: { app: "model-server" } },
      template: {
        metadata: { labels: { app: "model-server" } },
        spec: { container: [{ name: "server", image: "example.org/model-server:latest", resources: { limits: { "nvidia.com/gpu": "1" } } }] },
      },
    },
  });
  // An internet-wide egress rule that undoes the segment's default-deny egress.
  new NetworkPolicyV1(stack, "AllowAllEgress", {
    metadata: { name: "allow-all-egress", namespace: wards.namespace },
    spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }] },
  });
  // A namespace outside any segment: no default-deny, no Pod Security level.
  new NamespaceV1(stack, "Scratch", { metadata: { name: "scratch" } });
  // Broad Kubernetes API access.
  new RoleV1(stack, "Operator", {
    metadata: { name: "operator", namespace: wards.namespace },
    rule: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
  });
  new ClusterRoleBindingV1(stack, "OpsAdmin", {
    metadata: { name: "ops-admin" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subject: [{ kind: "Group", name: "ops", apiGroup: "rbac.authorization.k8s.io" }],
  });

  const policy = new CompliancePolicy(stack, "Compliance", {
    packs: ["gpu-baseline", "hipaa", "soc2", "gdpr-residency"],
    dataClassification: "phi",
    allowedRegions: ["eu-west-1"],
  });
  return { stack, policy };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // The findings without a stack trace, and the flag this app takes in place of cdktf's skipValidation hint.
  runSynth(
    () => {
      const app = new App({
        outdir: fileURLToPath(new URL("./cdktf.out", import.meta.url)),
        skipValidation: process.argv.includes("--skip-validation"),
      });
      defineInsecurePlatform(app);
      app.synth();
    },
    { skipValidationHint: "run it again with --skip-validation (npx tsx examples/insecure/main.ts --skip-validation) to write examples/insecure/cdktf.out" }
  );
}
