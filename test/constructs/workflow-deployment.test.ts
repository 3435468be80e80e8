import { App, Testing } from "cdktf";
import { synth, type Json } from "../support/synth.ts";
import { describe, expect, it } from "vitest";
import {
  FabricStack,
  GpuModel,
  GpuPool,
  NetworkSegment,
  StorageTier,
  Tenant,
  Workflow,
  WorkflowDeployment,
} from "../../constructs/index.ts";
import { RUNTIME_RULE_SOURCE, type RuntimeRuleSource } from "../../constructs/runtime-rules.ts";
import { CONFIG_MAP_KEY, parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";
import { Construct } from "constructs";

type Synthesized = ReturnType<typeof synth>;

/** The configuration of the one resource of `type` named `name`. */
function only(stack: Synthesized, type: string, name: string): Json {
  return stack.find(type, name).config;
}

function nativeWorkflow(name: string, vram = "8Gi", gpus = 1) {
  return Workflow.native({
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name },
    spec: {
      stages: [
        { id: "render", resources: { gpus, vram, model: "procedural-v1" }, run: { command: ["node", "render.mjs"] } },
        { id: "compose", needs: ["render"], resources: { gpus: 0 }, run: { command: ["node", "compose.mjs"] } },
      ],
    },
  });
}

function fixture(overrides: { vram?: string; gpus?: number; agentGpus?: number; extraTenant?: boolean } = {}) {
  const app = Testing.app();
  const stack = new FabricStack(app, "test", { platformName: "test", region: "eu-central" });
  const apps = new NetworkSegment(stack, "Apps", { name: "apps" });
  const work = new NetworkSegment(stack, "Work", { name: "work" });
  const alpha = new Tenant(stack, "Alpha", { name: "alpha", segment: apps, weight: 2 });
  const beta = new Tenant(stack, "Beta", { name: "beta", segment: work });
  const pool = new GpuPool(stack, "Pool", { name: "gpus", model: GpuModel.L4_24GB, nodes: 1, gpusPerNode: 2, tenantQuotas: [{ tenant: alpha, gpus: 2 }] });
  const tier = new StorageTier(stack, "Hot", { name: "hot", tierClass: "hot", provisioner: "rook-ceph.rbd.csi.ceph.com", encryption: { parameters: { encrypted: "true" } } });
  return { app, stack, apps, work, alpha, beta, pool, tier, workflow: nativeWorkflow("render", overrides.vram, overrides.gpus) };
}

function configOf(stack: Synthesized, name: string): PlatformConfig {
  const cm = only(stack, "kubernetes_config_map_v1", `${name}-config`);
  expect(cm.metadata.labels["app.kubernetes.io/component"]).toBe("platform-config");
  return parsePlatformConfig(JSON.parse(cm.data[CONFIG_MAP_KEY]));
}

describe("WorkflowDeployment", () => {
  it("runs the agent with a restricted security context, its GPUs and its pool's node selection", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow] });
    const r = synth(f.stack);
    const deployment = only(r, "kubernetes_deployment_v1", "agent");
    expect(deployment.metadata.namespace).toBe("work");
    const pod = deployment.spec.template.spec;
    expect(pod.automount_service_account_token).toBe(false);
    expect(pod.security_context).toMatchObject({ run_as_non_root: true, seccomp_profile: { type: "RuntimeDefault" } });
    expect(pod.node_selector).toMatchObject({ "nvidia.com/gpu.product": GpuModel.L4_24GB.product });
    expect(pod.toleration).toEqual(expect.arrayContaining([expect.objectContaining({ key: "nvidia.com/gpu", effect: "NoSchedule" })]));
    expect(pod.priority_class_name).toBe("gpus-interactive");
    const [container, runner] = pod.container;
    for (const c of [container, runner]) {
      expect(c.security_context, c.name).toMatchObject({
        run_as_non_root: true,
        read_only_root_filesystem: true,
        allow_privilege_escalation: false,
        privileged: false,
        capabilities: { drop: ["ALL"] },
        seccomp_profile: { type: "RuntimeDefault" },
      });
    }
    // The GPUs belong to the runner's container, where stages run; the agent's has none.
    expect(runner.name).toBe("runner");
    expect(runner.resources.requests["nvidia.com/gpu"]).toBe("2");
    expect(runner.resources.limits["nvidia.com/gpu"]).toBe("2");
    expect(container.resources.requests["nvidia.com/gpu"]).toBeUndefined();
    expect(container.resources.limits.memory).toBe("8Gi");
    expect(container.liveness_probe.http_get).toMatchObject({ path: "/healthz", scheme: "HTTPS" });
    expect(container.readiness_probe.http_get).toMatchObject({ path: "/readyz", scheme: "HTTPS" });
    expect(deployment.spec.strategy.type).toBe("Recreate");
  });

  it("references secrets by name, mounts them read-only, and keeps their values out of the config", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow] });
    const r = synth(f.stack);
    expect(r.resources("kubernetes_secret_v1")).toEqual([]);
    const pod = only(r, "kubernetes_deployment_v1", "agent").spec.template.spec;
    const secretNames = pod.volume.filter((v: any) => v.secret).map((v: any) => v.secret.secret_name).sort();
    expect(secretNames).toEqual(["agent-audit-signing", "agent-keyring", "agent-tls", "agent-tokens"]);
    for (const v of pod.volume.filter((v: any) => v.secret)) expect(v.secret.default_mode).toBe("0440");
    const mounts = pod.container[0].volume_mount;
    for (const name of ["keyring", "tokens", "audit-signing", "tls", "config"]) {
      expect(mounts.find((m: any) => m.name === name)?.read_only, name).toBe(true);
    }
    const config = configOf(r, "agent");
    expect(config.security.encryption).toEqual({ atRest: true, algorithm: "AES-256-GCM", keyring: { secretName: "agent-keyring", mountPath: expect.any(String) } });
    expect(config.security.auth.tokens.secretName).toBe("agent-tokens");
    expect(config.security.audit.sink.claimName).toBe("agent-audit");
    expect(only(r, "kubernetes_persistent_volume_claim_v1", "agent-audit").spec.storage_class_name).toBe("hot");
    // Stage workspaces (plaintext until sealed) go on the memory-backed scratch volume.
    const scratch = mounts.find((m: any) => m.name === "scratch");
    expect(pod.volume.find((v: any) => v.name === "scratch").empty_dir.medium).toBe("Memory");
    const scratchEnv = pod.container[0].env.find((e: any) => e.name === "GPUFABRIC_SCRATCH_DIR");
    expect(scratchEnv.value.startsWith(`${scratch.mount_path}/`)).toBe(true);
  });

  it("keeps every Secret, the config, the store and the audit sink out of the container where stages run", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", {
      name: "agent",
      pool: f.pool,
      tier: f.tier,
      segment: f.work,
      tenants: [f.alpha],
      workflows: [f.workflow],
      clientCaSecretName: "workers-ca",
    });
    const r = synth(f.stack);
    const pod = only(r, "kubernetes_deployment_v1", "agent").spec.template.spec;
    const config = configOf(r, "agent");
    // The stages' container is the one that runs `gpufabric runner`, on the socket the config names.
    const stageContainers = pod.container.filter((c: any) => c.args?.[0] === "runner");
    expect(stageContainers.map((c: any) => c.name)).toEqual(["runner"]);
    expect(config.isolation).toMatchObject({ mode: "runner", runnerSocket: stageContainers[0].args[2] });
    const secretVolumes = new Set(pod.volume.filter((v: any) => v.secret || v.projected).map((v: any) => v.name));
    expect(secretVolumes.size).toBe(5); // keyring, tokens, signing key, TLS, client CA
    const privateVolumes = new Set([...secretVolumes, "config", "state", "audit-sink"]);
    for (const runner of stageContainers) {
      const mounted = (runner.volume_mount ?? []).map((m: any) => m.name);
      expect(mounted.filter((name: string) => privateVolumes.has(name)), runner.name).toEqual([]);
      expect(runner.env_from ?? []).toEqual([]);
      expect((runner.env ?? []).filter((e: any) => e.value_from)).toEqual([]);
      // What it does share with the agent: the workspaces, the model cache (read-only) and the socket's folder.
      expect(mounted.sort()).toEqual(["models", "runner-socket", "scratch"]);
      expect(runner.volume_mount.find((m: any) => m.name === "models").read_only).toBe(true);
    }
    // The pod does not share one PID namespace: stages never see the agent's processes.
    expect(pod.share_process_namespace ?? false).toBe(false);
    // Both containers see the workspaces at the same path, which is where the agent puts them.
    const scratchOf = (c: any) => c.volume_mount.find((m: any) => m.name === "scratch").mount_path;
    expect(scratchOf(stageContainers[0])).toBe(scratchOf(pod.container[0]));
  });

  it("lets a cluster whose pods cannot create user namespaces keep stages to the runner's container, and validates the choice", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow], stageSandbox: "container" });
    expect(configOf(synth(f.stack), "agent").isolation).toMatchObject({ mode: "runner", sandbox: "none" });
    const g = fixture();
    expect(() => new WorkflowDeployment(g.stack, "Agent", { name: "agent", pool: g.pool, tier: g.tier, segment: g.work, tenants: [g.alpha], workflows: [g.workflow], stageSandbox: "none" as never })).toThrow(/stageSandbox/);
  });

  it("mounts a client CA Secret for mutual TLS when given one, and validates its name", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow], clientCaSecretName: "workers-ca" });
    const r = synth(f.stack);
    const pod = only(r, "kubernetes_deployment_v1", "agent").spec.template.spec;
    expect(pod.volume.find((v: any) => v.name === "client-ca").secret).toMatchObject({ secret_name: "workers-ca", default_mode: "0440" });
    const mount = pod.container[0].volume_mount.find((m: any) => m.name === "client-ca");
    expect(mount.read_only).toBe(true);
    expect(configOf(r, "agent").security.tls.clientCa).toEqual({ secretName: "workers-ca", mountPath: mount.mount_path });
    const g = fixture();
    expect(
      () => new WorkflowDeployment(g.stack, "Agent", { name: "agent", pool: g.pool, tier: g.tier, segment: g.work, tenants: [g.alpha], workflows: [g.workflow], clientCaSecretName: "Workers_CA" }),
    ).toThrow(/clientCaSecretName/);
  });

  it("serializes a platform config that the runtime's schema accepts", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha, f.beta], workflows: [f.workflow] });
    const config = configOf(synth(f.stack), "agent");
    expect(config.version).toBe(1);
    expect(config.platform).toEqual({ name: "test", region: "eu-central", zones: [] });
    expect(config.deployment).toMatchObject({ name: "agent", namespace: "work", pool: "gpus", tier: "hot", segment: "work" });
    expect(config.pools[0]!.devices).toHaveLength(2);
    expect(config.pools[0]!.tenantQuotas).toEqual({ alpha: 2 });
    expect(config.tenants.map((t) => [t.name, t.weight])).toEqual([["alpha", 2], ["beta", 1]]);
    expect(config.workflows).toEqual([expect.objectContaining({ name: "render", format: "native", tenants: ["alpha", "beta"] })]);
    expect(config.segments.map((s) => s.name).sort()).toEqual(["apps", "work"]);
  });

  it("admits only the allowed segments to the API and lets them reach it", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow] });
    const r = synth(f.stack);
    const ingress = only(r, "kubernetes_network_policy_v1", "agent-api-ingress");
    expect(ingress.spec.pod_selector.match_labels["app.kubernetes.io/instance"]).toBe("agent");
    expect(ingress.spec.policy_types).toEqual(["Ingress"]);
    const admitted = ingress.spec.ingress[0].from.map((p: any) => p.namespace_selector.match_labels["kubernetes.io/metadata.name"]).sort();
    expect(admitted).toEqual(["apps", "work"]);
    expect(ingress.spec.ingress[0].ports).toEqual([{ port: "8443", protocol: "TCP" }]);
    expect(r.named("kubernetes_network_policy_v1", "allow-egress-to-agent").map((p) => p.config.metadata.namespace).sort()).toEqual(["apps", "work"]);
  });

  it("binds a least-privilege role, a service, state volume and disruption budget", () => {
    const f = fixture();
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow] });
    const r = synth(f.stack);
    const role = only(r, "kubernetes_role_v1", "agent");
    for (const rule of role.rule) {
      expect(rule.verbs).not.toContain("*");
      expect(rule.resources).not.toContain("*");
      expect(rule.verbs).not.toContain("delete");
    }
    const binding = only(r, "kubernetes_role_binding_v1", "agent");
    expect(binding.subject).toEqual([{ kind: "ServiceAccount", name: expect.stringMatching(/^\$\{kubernetes_service_account_v1\.\w+\.metadata\[0\]\.name\}$/), namespace: "work" }]);
    expect(binding.role_ref).toEqual({ api_group: "rbac.authorization.k8s.io", kind: "Role", name: expect.stringMatching(/^\$\{kubernetes_role_v1\.\w+\.metadata\[0\]\.name\}$/) });
    expect(only(r, "kubernetes_service_account_v1", "agent").automount_service_account_token).toBe(false);
    expect(only(r, "kubernetes_service_v1", "agent").spec.type).toBe("ClusterIP");
    expect(only(r, "kubernetes_persistent_volume_claim_v1", "agent-state").wait_until_bound).toBe(false);
    expect(only(r, "kubernetes_pod_disruption_budget_v1", "agent").spec.min_available).toBe("1");
    expect(r.resources("kubernetes_cluster_role_binding_v1")).toEqual([]);
  });

  it("puts the runtime rules declared in the stack into the config", () => {
    const f = fixture();
    class PhiRule extends Construct implements RuntimeRuleSource {
      readonly [RUNTIME_RULE_SOURCE] = true as const;
      runtimeRules() {
        return [{ id: "GF-RT-1", description: "phi only on exclusive pools", tenantClassifications: ["phi" as const], require: { poolSharing: ["exclusive" as const] } }];
      }
    }
    new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow] });
    new PhiRule(f.stack, "Rules"); // declared after the deployment: picked up at synth
    expect(configOf(synth(f.stack), "agent").runtimeRules.map((r) => r.id)).toEqual(["GF-RT-1"]);
  });

  describe("rejects bad props with a fix", () => {
    const make = (f: ReturnType<typeof fixture>, extra: Partial<ConstructorParameters<typeof WorkflowDeployment>[2]>) => () =>
      new WorkflowDeployment(f.stack, "Agent", { name: "agent", pool: f.pool, tier: f.tier, segment: f.work, tenants: [f.alpha], workflows: [f.workflow], ...extra });

    it("a stage needing more VRAM than the pool's GPUs have", () => {
      const f = fixture({ vram: "40Gi" });
      expect(make(f, {})).toThrow(/stages\.render\.resources\.vram: 40960 MiB exceeds the 23034 MiB of one L4-24GB device/);
    });
    it("a stage needing more GPUs than a node has", () => {
      const f = fixture({ gpus: 4 });
      expect(make(f, {})).toThrow(/resources\.gpus: 4 GPUs do not fit on one node of pool 'gpus'/);
    });
    it("a workflow for a tenant the deployment does not serve", () => {
      const f = fixture();
      const wf = Workflow.native((f.workflow.toConfig([]).document as Record<string, unknown>), { name: "other", tenants: [f.beta] });
      expect(make(f, { workflows: [wf] })).toThrow(/workflows\[0\]\.tenants\[0\]: tenant 'beta' is not served by this deployment/);
    });
    it("no tenants, a bad name, too many GPUs, a bad size", () => {
      const f = fixture();
      expect(make(f, { tenants: [] })).toThrow(/tenants: must name at least one Tenant/);
      expect(make(f, { name: "Agent_1" })).toThrow(/name: "Agent_1" is not a DNS-1123 label/);
      expect(make(f, { gpus: 3 })).toThrow(/gpus: 3 GPUs cannot fit on one node of pool 'gpus' \(2 per node\)/);
      expect(make(f, { stateSize: "twenty gigs" })).toThrow(/stateSize: .twenty gigs. is not a quantity/);
    });
    it("two workflows with one name", () => {
      const f = fixture();
      expect(make(f, { workflows: [f.workflow, nativeWorkflow("render")] })).toThrow(/duplicate workflow name 'render'/);
    });
  });
});

describe("the example platform (main.ts)", () => {
  it("synthesizes every kind of object the platform needs, and platform configs the runtime accepts", async () => {
    const { defineStudioPlatform } = await import("../../main.ts");
    const stack = defineStudioPlatform(new App({ outdir: Testing.app().outdir }));
    const r = synth(stack);
    for (const type of [
      "kubernetes_namespace_v1",
      "kubernetes_network_policy_v1",
      "kubernetes_storage_class_v1",
      "kubernetes_persistent_volume_claim_v1",
      "kubernetes_config_map_v1",
      "kubernetes_deployment_v1",
      "kubernetes_service_account_v1",
      "kubernetes_role_v1",
      "kubernetes_role_binding_v1",
      "kubernetes_resource_quota_v1",
      "kubernetes_priority_class_v1",
      "kubernetes_service_v1",
      "kubernetes_pod_disruption_budget_v1",
    ]) {
      expect(r.resources(type).length, type).toBeGreaterThan(0);
    }
    expect(r.resources("kubernetes_manifest")).toEqual([]);
    const batch = configOf(r, "batch-pipeline");
    const interactive = configOf(r, "interactive-comfy");
    expect(batch.pools[0]!.sharing).toEqual({ mode: "exclusive" });
    expect(interactive.pools[0]!.sharing).toEqual({ mode: "time-slicing", replicas: 4 });
    expect(batch.workflows.map((w) => w.format)).toEqual(["native"]);
    expect(interactive.workflows.map((w) => [w.name, w.format, w.priority])).toEqual([["txt2img-upscale", "comfyui", "interactive"]]);
    expect(batch.tenants.map((t) => t.name)).toEqual(["animation", "research"]);
  });
});
