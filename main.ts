/**
 * The example platform: what a platform team's repository declares. `npx cdktf synth` runs this file
 * (see cdktf.json) and writes Terraform JSON to cdktf.out/; `npx cdktf deploy` applies it to the cluster
 * of the current kubeconfig context.
 */
import { App } from "cdktf";
import { fileURLToPath } from "node:url";
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
  Workflow,
  WorkflowDeployment,
  runSynth,
} from "./constructs/index.ts";

const examples = (file: string) => fileURLToPath(new URL(`./examples/${file}`, import.meta.url));

export function defineStudioPlatform(app: App): FabricStack {
  const stack = new FabricStack(app, "studio", {
    platformName: "studio",
    region: "eu-central",
    zones: ["eu-central-a", "eu-central-b"],
    kubeconfigContext: process.env.GPUFABRIC_KUBE_CONTEXT,
  });

  // Where creative teams' tools live, and where the GPU agents run. All default-deny.
  const apps = new NetworkSegment(stack, "StudioApps", { name: "studio-apps" });
  const gpuWork = new NetworkSegment(stack, "GpuWork", { name: "gpu-work" });
  gpuWork.allowFrom(apps, [8443]);
  // The batch cluster's own segment: its workers hold every GPU of the pool's nodes, which the tenants'
  // GPU quotas in gpu-work would refuse, and its NetworkPolicies are the whole story of its traffic there.
  const gpuBatch = new NetworkSegment(stack, "GpuBatch", { name: "gpu-batch" });

  const animation = new Tenant(stack, "Animation", {
    name: "animation",
    segment: apps,
    weight: 2,
    roles: [
      { subject: "group:animation-leads", role: "admin" },
      { subject: "group:animation", role: "submitter" },
    ],
  });
  const research = new Tenant(stack, "Research", {
    name: "research",
    segment: gpuWork,
    weight: 1,
    dataClassification: "confidential",
    roles: [{ subject: "group:research", role: "submitter" }],
  });

  const batchPool = new GpuPool(stack, "BatchH100", {
    name: "batch-h100",
    model: GpuModel.H100_80GB,
    nodes: 2,
    gpusPerNode: 8,
    sharing: GpuSharing.exclusive(),
    tenantQuotas: [
      { tenant: animation, gpus: 10 },
      { tenant: research, gpus: 6 },
    ],
  });
  const interactivePool = new GpuPool(stack, "InteractiveL40S", {
    name: "interactive-l40s",
    model: GpuModel.L40S_48GB,
    nodes: 2,
    gpusPerNode: 4,
    sharing: GpuSharing.timeSlicing(4),
    tenantQuotas: [{ tenant: animation, gpus: 8 }],
  });

  // Ceph RBD with encryption on: volumes are encrypted with keys from the cluster's KMS.
  const hot = new StorageTier(stack, "Hot", {
    name: "hot",
    tierClass: "hot",
    provisioner: "rook-ceph.rbd.csi.ceph.com",
    parameters: { clusterID: "rook-ceph", pool: "replicapool-nvme", "csi.storage.k8s.io/fstype": "ext4" },
    encryption: { parameters: { encrypted: "true", encryptionKMSID: "studio-kms" } },
    retentionDays: 30,
    dataClassification: "confidential",
  });
  const warm = new StorageTier(stack, "Warm", {
    name: "warm",
    tierClass: "warm",
    provisioner: "rook-ceph.rbd.csi.ceph.com",
    parameters: { clusterID: "rook-ceph", pool: "replicapool-hdd", "csi.storage.k8s.io/fstype": "ext4" },
    encryption: { parameters: { encrypted: "true", encryptionKMSID: "studio-kms" } },
    retentionDays: 180,
    modelsSize: "500Gi",
    artifactsSize: "4Ti",
  });
  // CephFS (with fscrypt encryption): the one volume every control plane and worker of the batch cluster mounts at once.
  const shared = new StorageTier(stack, "Shared", {
    name: "shared",
    tierClass: "warm",
    provisioner: "rook-ceph.cephfs.csi.ceph.com",
    parameters: { clusterID: "rook-ceph", fsName: "studio-fs", pool: "studio-fs-replicated" },
    encryption: { parameters: { encrypted: "true", encryptionKMSID: "studio-kms" } },
    accessModes: ["ReadWriteMany"],
    retentionDays: 180,
    dataClassification: "confidential",
  });

  // Cluster mode: two control planes sharing a managed PostgreSQL, and a worker on each of the pool's
  // two nodes holding all 8 of its GPUs; the scheduler divides them under the tenants' quotas.
  const batch = new WorkflowDeployment(stack, "BatchPipeline", {
    name: "batch-pipeline",
    pool: batchPool,
    tier: warm,
    segment: gpuBatch,
    tenants: [animation, research],
    workflows: [Workflow.fromFile(examples("workflows/contact-sheet.yaml"), { priority: "batch" })],
    cluster: {
      // The managed database's private subnet; the URL is in the Secret batch-pipeline-database (key `url`).
      database: { secretName: "batch-pipeline-database", sslMode: "verify-full", cidr: "10.40.0.0/24" },
      controlPlaneReplicas: 2,
      sharedTier: shared,
    },
  });
  const interactive = new WorkflowDeployment(stack, "InteractiveComfy", {
    name: "interactive-comfy",
    pool: interactivePool,
    tier: hot,
    segment: gpuWork,
    tenants: [animation],
    gpus: 4,
    // A ComfyUI server beside the runner on each of the 4 GPUs, reading the hot tier's models read-only.
    comfyui: { image: "studio/comfyui:v0.3.60", modelsVolume: { mountPath: "/opt/ComfyUI/models" } },
    workflows: [Workflow.fromFile(examples("comfyui/txt2img-upscale.json"), { name: "txt2img-upscale", priority: "interactive" })],
  });

  // Every pack runs at synth: an error finding fails `cdktf synth` with the construct path, rule and fix.
  // Research's data is confidential and stays in eu-central.
  new CompliancePolicy(stack, "Compliance", {
    packs: ["gpu-baseline", "hipaa", "soc2", "gdpr-residency"],
    dataClassification: "confidential",
    allowedRegions: ["eu-central"],
    allowedZones: ["eu-central-a", "eu-central-b"],
  });
  Compliance.acknowledge(
    batch,
    "GF-GPU-006",
    "The batch cluster's workers hold every GPU of the pool's two nodes by design, in gpu-batch where no tenant runs pods; " +
      "the control plane divides those GPUs between tenants under the platform config's tenantQuotas (GF-GPU-005), and the tenants' ResourceQuotas stay in their own segments.",
  );
  Compliance.acknowledge(
    interactive,
    "GF-GPU-006",
    "The interactive pool's only tenant (animation) has its quota in its own segment, studio-apps; in gpu-work this agent is the pool's only GPU consumer, " +
      "its GPU count is fixed by `gpus: 4`, and it divides them between tenants under the platform config's tenantQuotas (GF-GPU-005).",
  );

  return stack;
}

// Synthesize when run as the cdktf app; stay quiet when imported (tests, benchmarks, the CLI). runSynth prints
// a props error or compliance findings as their messages, without a stack trace, and exits 1.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runSynth(() => {
    const app = new App();
    defineStudioPlatform(app);
    app.synth();
  });
}
