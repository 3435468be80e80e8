/**
 * gpufabric/azure: GPU node pools on Azure Kubernetes Service. Needs the optional peer dependency @cdktf/provider-azurerm.
 */
export * from "./aks-gpu-node-pool.ts";
export { A100_80GB_PCIE, AZURE_VM_SIZES, type InstanceGpus } from "../cloud/instance-catalog.ts";
export type { GpuNodePoolProps } from "../cloud/node-pool-base.ts";
