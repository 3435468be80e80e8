import type { Pack } from "./pack.ts";

export const gpuBaseline: Pack = {
  id: "gpu-baseline",
  title: "GPU platform baseline",
  description: "Multi-tenant GPU hygiene: GPU isolation between tenants, hardened workloads, quotas and limits, network segmentation, and a correctly wired agent.",
  controls: {
    isolation: "GPU isolation between tenants",
    hardening: "Workload hardening",
    capacity: "Limits, quotas and priorities",
    network: "Network segmentation",
    storage: "Data at rest",
    agent: "Agent wiring",
    access: "Kubernetes API access",
    config: "Platform config",
  },
};
