/**
 * gpufabric/gcp: GPU node pools on Google Kubernetes Engine. Needs the optional peer dependency @cdktf/provider-google.
 */
export * from "./gke-gpu-node-pool.ts";
export { GCP_MACHINE_TYPES, type GcpMachineGpus, type InstanceGpus } from "../cloud/instance-catalog.ts";
export type { GpuNodePoolProps } from "../cloud/node-pool-base.ts";
