/** WorkflowDeployment's tracing option: the platform config's observability.tracing section, off without it. */
import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { FabricStack, GpuModel, GpuPool, NetworkSegment, StorageTier, Tenant, Workflow, WorkflowDeployment } from "../../constructs/index.ts";
import { CONFIG_MAP_KEY, parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";
import { synth } from "../support/synth.ts";

type Props = ConstructorParameters<typeof WorkflowDeployment>[2];

function deployed(extra: Partial<Props>): PlatformConfig {
  const app = Testing.app();
  const stack = new FabricStack(app, "test", { platformName: "test", region: "eu-central" });
  const segment = new NetworkSegment(stack, "StudioSegment", { name: "studio" });
  const tenant = new Tenant(stack, "Alpha", { name: "alpha", segment });
  const pool = new GpuPool(stack, "Pool", { name: "l4", model: GpuModel.L4_24GB, nodes: 1, gpusPerNode: 2, tenantQuotas: [{ tenant, gpus: 2 }] });
  const tier = new StorageTier(stack, "Warm", { name: "warm", tierClass: "warm", provisioner: "ebs.csi.aws.com", encryption: { parameters: { encrypted: "true" } } });
  const workflow = Workflow.native({
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: "render" },
    spec: { stages: [{ id: "render", resources: { gpus: 1, vram: "8Gi" }, run: { command: ["node", "render.mjs"] } }] },
  });
  new WorkflowDeployment(stack, "Studio", { name: "studio", pool, tier, segment, tenants: [tenant], workflows: [workflow], ...extra });
  const r = synth(stack);
  return parsePlatformConfig(JSON.parse(r.find("kubernetes_config_map_v1", "studio-config").config.data[CONFIG_MAP_KEY]));
}

describe("WorkflowDeployment with tracing", () => {
  it("writes tracing off (endpoint null) without the option", () => {
    expect(deployed({}).observability.tracing).toEqual({ endpoint: null, headers: {}, serviceName: "gpufabric-agent", sampleRatio: 1 });
  });

  it("writes the endpoint, headers, service name and sample ratio given, the schema's defaults for the rest", () => {
    const tracing = deployed({ tracing: { endpoint: "http://otel-collector.observability:4318/v1/traces", sampleRatio: 0.25 } }).observability.tracing;
    expect(tracing).toEqual({ endpoint: "http://otel-collector.observability:4318/v1/traces", headers: {}, serviceName: "gpufabric-agent", sampleRatio: 0.25 });
  });

  it("refuses an endpoint that is not an http(s) URL at synth, naming the field", () => {
    expect(() => deployed({ tracing: { endpoint: "otel-collector:4318" } })).toThrow(/observability\.tracing\.endpoint: must be/);
  });
});
