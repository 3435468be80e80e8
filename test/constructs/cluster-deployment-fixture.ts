/**
 * A platform for WorkflowDeployment's cluster tests: an H100 pool (3 nodes of 8 by default), a shared
 * ReadWriteMany tier, tenant alpha on segment apps, and the deployment's props on segment batch with a
 * cluster over the `batch-database` secret; and readers of what it synthesizes.
 */
import { Testing } from "cdktf";
import { FabricStack, GpuModel, GpuPool, NetworkSegment, StorageTier, Tenant, Workflow, WorkflowDeployment, type ClusterProps } from "../../constructs/index.ts";
import { CONFIG_MAP_KEY, parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";
import { synth, type Json } from "../support/synth.ts";

export type Props = ConstructorParameters<typeof WorkflowDeployment>[2];

export function platform(options: { nodes?: number; accessModes?: ("ReadWriteOnce" | "ReadWriteMany")[] } = {}) {
  const app = Testing.app();
  const stack = new FabricStack(app, "test", { platformName: "test", region: "eu-central" });
  const apps = new NetworkSegment(stack, "Apps", { name: "apps" });
  const batch = new NetworkSegment(stack, "BatchSegment", { name: "batch" });
  const alpha = new Tenant(stack, "Alpha", { name: "alpha", segment: apps });
  const pool = new GpuPool(stack, "Pool", { name: "h100", model: GpuModel.H100_80GB, nodes: options.nodes ?? 3, gpusPerNode: 8, tenantQuotas: [{ tenant: alpha, gpus: 8 }] });
  const tier = new StorageTier(stack, "Shared", {
    name: "shared",
    tierClass: "warm",
    provisioner: "rook-ceph.cephfs.csi.ceph.com",
    encryption: { parameters: { encrypted: "true" } },
    accessModes: options.accessModes ?? ["ReadWriteMany"],
  });
  const workflow = Workflow.native({
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: "render" },
    spec: { stages: [{ id: "render", resources: { gpus: 1, vram: "8Gi" }, run: { command: ["node", "render.mjs"] } }] },
  });
  const props = (extra: Partial<Props> = {}, cluster: Partial<ClusterProps> | null = {}): Props => ({
    name: "batch",
    pool,
    tier,
    segment: batch,
    tenants: [alpha],
    workflows: [workflow],
    ...(cluster === null ? {} : { cluster: { database: { secretName: "batch-database" }, ...cluster } }),
    ...extra,
  });
  return { stack, apps, batch, pool, tier, props };
}

export function configOf(r: ReturnType<typeof synth>, name: string): PlatformConfig {
  return parsePlatformConfig(JSON.parse(r.find("kubernetes_config_map_v1", `${name}-config`).config.data[CONFIG_MAP_KEY]));
}

export const podOf = (workload: Json) => workload.spec.template.spec;
