/**
 * gpufabric/aws: GPU node pools on Amazon EKS. Needs the optional peer dependency @cdktf/provider-aws.
 */
export * from "./eks-gpu-node-pool.ts";
export { AWS_INSTANCE_TYPES, type InstanceGpus } from "../cloud/instance-catalog.ts";
export type { GpuNodePoolProps } from "../cloud/node-pool-base.ts";
