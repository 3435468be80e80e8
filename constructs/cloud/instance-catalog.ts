/**
 * GPU instance types gpufabric knows, per cloud: the GPU model and how many a node has. A node pool reads
 * its pool's model and GPU count from here, so a GpuPool never restates (and never misstates) them.
 * Types not listed are declared with the node pool's `gpu` prop.
 */
import { GpuModel } from "../gpu-model.ts";

/** The GPUs of one instance type. */
export interface InstanceGpus {
  readonly model: GpuModel;
  /** GPUs per node. */
  readonly count: number;
}

/**
 * The A100 80GB as a PCIe card (Azure's NC A100 v4): its product label differs from the SXM4 module's,
 * so a pool selecting GpuModel.A100_80GB would not match these nodes. MIG profiles as the SXM4 80GB.
 */
export const A100_80GB_PCIE = GpuModel.custom({
  name: "A100-80GB-PCIe",
  product: "NVIDIA-A100-80GB-PCIe",
  memoryMiB: 81920,
  migProfiles: Object.fromEntries(GpuModel.A100_80GB.migProfiles),
});

function sizes(prefix: string, model: GpuModel, counts: Readonly<Record<string, number>>): Record<string, InstanceGpus> {
  return Object.fromEntries(Object.entries(counts).map(([size, count]) => [`${prefix}${size}`, { model, count }]));
}

const G_SIZES = { xlarge: 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8 };

/** EC2 GPU instance types (EKS node groups). */
export const AWS_INSTANCE_TYPES: Readonly<Record<string, InstanceGpus>> = Object.freeze({
  ...sizes("g5.", GpuModel.A10G_24GB, G_SIZES),
  ...sizes("g6.", GpuModel.L4_24GB, G_SIZES),
  ...sizes("g6e.", GpuModel.L40S_48GB, G_SIZES),
  "p4d.24xlarge": { model: GpuModel.A100_40GB, count: 8 },
  "p4de.24xlarge": { model: GpuModel.A100_80GB, count: 8 },
  "p5.48xlarge": { model: GpuModel.H100_80GB, count: 8 },
  "p5e.48xlarge": { model: GpuModel.H200_141GB, count: 8 },
  "p5en.48xlarge": { model: GpuModel.H200_141GB, count: 8 },
});

/** A GKE machine type's GPUs and the accelerator type GKE attaches them as. */
export interface GcpMachineGpus extends InstanceGpus {
  /** The `guest_accelerator` type, e.g. `nvidia-tesla-a100`. */
  readonly accelerator: string;
}

function gcp(prefix: string, model: GpuModel, accelerator: string, counts: Readonly<Record<string, number>>): Record<string, GcpMachineGpus> {
  return Object.fromEntries(Object.entries(counts).map(([size, count]) => [`${prefix}${size}`, { model, count, accelerator }]));
}

/** Compute Engine accelerator-optimized machine types (GKE node pools); each has a fixed GPU count. */
export const GCP_MACHINE_TYPES: Readonly<Record<string, GcpMachineGpus>> = Object.freeze({
  ...gcp("a2-highgpu-", GpuModel.A100_40GB, "nvidia-tesla-a100", { "1g": 1, "2g": 2, "4g": 4, "8g": 8 }),
  ...gcp("a2-megagpu-", GpuModel.A100_40GB, "nvidia-tesla-a100", { "16g": 16 }),
  ...gcp("a2-ultragpu-", GpuModel.A100_80GB, "nvidia-a100-80gb", { "1g": 1, "2g": 2, "4g": 4, "8g": 8 }),
  ...gcp("a3-highgpu-", GpuModel.H100_80GB, "nvidia-h100-80gb", { "1g": 1, "2g": 2, "4g": 4, "8g": 8 }),
  ...gcp("a3-megagpu-", GpuModel.H100_80GB, "nvidia-h100-mega-80gb", { "8g": 8 }),
  ...gcp("a3-ultragpu-", GpuModel.H200_141GB, "nvidia-h200-141gb", { "8g": 8 }),
  ...gcp("g2-standard-", GpuModel.L4_24GB, "nvidia-l4", { "4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8 }),
});

/** Azure GPU VM sizes (AKS node pools). */
export const AZURE_VM_SIZES: Readonly<Record<string, InstanceGpus>> = Object.freeze({
  Standard_NC24ads_A100_v4: { model: A100_80GB_PCIE, count: 1 },
  Standard_NC48ads_A100_v4: { model: A100_80GB_PCIE, count: 2 },
  Standard_NC96ads_A100_v4: { model: A100_80GB_PCIE, count: 4 },
  Standard_ND96asr_v4: { model: GpuModel.A100_40GB, count: 8 },
  Standard_ND96amsr_A100_v4: { model: GpuModel.A100_80GB, count: 8 },
  Standard_ND96isr_H100_v5: { model: GpuModel.H100_80GB, count: 8 },
  Standard_ND96isr_H200_v5: { model: GpuModel.H200_141GB, count: 8 },
});

const CLOUD_WORDS = {
  aws: { thing: "an EC2 instance type" },
  gcp: { thing: "a GKE machine type" },
  azure: { thing: "an Azure VM size" },
} as const;

/**
 * The fix-it message for an instance type the catalog lacks: it names the prop that declares one, so a new
 * instance family needs no gpufabric release.
 */
export function unknownInstanceType(cloud: keyof typeof CLOUD_WORDS, type: string, known: readonly string[], declare: string): string {
  const { thing } = CLOUD_WORDS[cloud];
  return (
    `'${type}' is not ${thing} gpufabric knows the GPUs of: declare them with ${declare} ` +
    `(GpuModel.custom({...}) for a model gpufabric does not know), or use one of ${known.join(", ")}`
  );
}
