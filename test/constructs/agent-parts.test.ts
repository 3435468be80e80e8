import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { FabricStack, GpuModel, GpuPool, NetworkSegment, StorageTier, Tenant, Workflow, WorkflowDeployment } from "../../constructs/index.ts";
import { agentContainer } from "../../constructs/agent/agent-container.ts";
import { Container } from "../../constructs/agent/container.ts";
import { AgentMetadata } from "../../constructs/agent/metadata.ts";
import { AGENT_PATHS, AGENT_UID } from "../../constructs/agent/paths.ts";
import { PodSpec } from "../../constructs/agent/pod-spec.ts";
import { runnerContainer } from "../../constructs/agent/runner-container.ts";
import { Volume } from "../../constructs/agent/volume.ts";
import { AgentVolumes } from "../../constructs/agent/volumes.ts";
import { CONFIG_MAP_KEY } from "../../runtime/config/index.ts";
import { SCHEDULER_DEFAULTS } from "../../runtime/config/schema.ts";
import { synth } from "../support/synth.ts";

const RESTRICTED = {
  runAsNonRoot: true,
  runAsUser: AGENT_UID,
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

function container(secretFree = false): Container {
  return new Container({ name: "c", image: "img", args: ["x"], uid: AGENT_UID, resources: { limits: { cpu: "1", memory: "1Gi" } }, secretFree });
}

function platform() {
  const app = Testing.app();
  const stack = new FabricStack(app, "parts", { platformName: "parts", region: "eu-central" });
  const segment = new NetworkSegment(stack, "Work", { name: "work" });
  const tenant = new Tenant(stack, "Alpha", { name: "alpha", segment });
  const pool = new GpuPool(stack, "Pool", { name: "gpus", model: GpuModel.L4_24GB, nodes: 1, gpusPerNode: 2, tenantQuotas: [{ tenant, gpus: 2 }] });
  const tier = new StorageTier(stack, "Hot", { name: "hot", tierClass: "hot", provisioner: "rook-ceph.rbd.csi.ceph.com", encryption: { parameters: { encrypted: "true" } } });
  return { stack, segment, tenant, pool, tier };
}

describe("Container", () => {
  it("starts from the restricted security context and pulls only when missing", () => {
    const spec = container().toSpec();
    expect(spec.securityContext).toEqual(RESTRICTED);
    expect(spec.imagePullPolicy).toBe("IfNotPresent");
  });

  it("mounts Secrets read-only even when asked otherwise, and other volumes as asked", () => {
    const c = container()
      .mount("/keys", Volume.fromSecret("keys", "my-keys"), { readOnly: false })
      .mount("/data", Volume.fromPersistentVolumeClaim("data", "claim"))
      .mount("/cache", Volume.fromPersistentVolumeClaim("cache", "claim2"), { readOnly: true });
    expect(c.toSpec().volumeMount).toEqual([
      { name: "keys", mountPath: "/keys", readOnly: true },
      { name: "data", mountPath: "/data" },
      { name: "cache", mountPath: "/cache", readOnly: true },
    ]);
  });

  it("refuses a Secret when it is declared secret-free, naming the container, the volume and the fix", () => {
    const c = container(true).mount("/scratch", Volume.fromEmptyDir("scratch", { medium: "Memory", sizeLimit: "1Gi" }));
    expect(() => c.mount("/keys", Volume.fromSecret("keyring", "agent-keyring"))).toThrow(/container 'c' holds no Secret.*'keyring'.*agent's container instead/);
    expect(c.volumes.map((v) => v.name)).toEqual(["scratch"]);
  });
});

describe("Volume", () => {
  it("gives Secrets mode 0440 and makes them required, and ConfigMaps 0444", () => {
    expect(Volume.fromSecret("k", "s").toSpec()).toEqual({ name: "k", secret: { secretName: "s", defaultMode: "0440", optional: false } });
    expect(Volume.fromSecret("k", "s").holdsSecret).toBe(true);
    expect(Volume.fromConfigMap("c", "m").toSpec()).toEqual({ name: "c", configMap: { name: "m", defaultMode: "0444" } });
    expect(Volume.fromConfigMap("c", "m").holdsSecret).toBe(false);
  });
});

describe("PodSpec", () => {
  it("declares each mounted volume once, in the order of first mount, and applies the restricted pod context", () => {
    const shared = Volume.fromEmptyDir("shared", { sizeLimit: "1Mi" });
    const a = new Container({ name: "a", image: "i", args: [], uid: "7", resources: {} }).mount("/s", Volume.fromSecret("s", "sec")).mount("/x", shared);
    const b = new Container({ name: "b", image: "i", args: [], uid: "7", resources: {} }).mount("/x", shared).mount("/y", Volume.fromPersistentVolumeClaim("y", "c"));
    const spec = new PodSpec({ serviceAccountName: "sa", uid: "7" }).addContainer(a).addContainer(b).toSpec();
    expect((spec.volume as { name: string }[]).map((v) => v.name)).toEqual(["s", "shared", "y"]);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: "7", runAsGroup: "7", fsGroup: "7", seccompProfile: { type: "RuntimeDefault" } });
  });

  it("refuses two containers of one name, and two different volumes of one name", () => {
    const pod = new PodSpec({ serviceAccountName: "sa", uid: "7" }).addContainer(container());
    expect(() => pod.addContainer(container())).toThrow(/already has a container named 'c'/);
    const clash = new PodSpec({ serviceAccountName: "sa", uid: "7" })
      .addContainer(new Container({ name: "a", image: "i", args: [], uid: "7", resources: {} }).mount("/a", Volume.fromEmptyDir("v", { sizeLimit: "1Mi" })))
      .addContainer(new Container({ name: "b", image: "i", args: [], uid: "7", resources: {} }).mount("/b", Volume.fromSecret("v", "sec")));
    expect(() => clash.toSpec()).toThrow(/two different volumes are named 'v'/);
  });
});

describe("the agent's and the runner's containers", () => {
  it("give the agent its Secrets read-only and the runner none of them, with the GPUs", () => {
    const f = platform();
    const meta = new AgentMetadata(f.stack, "agent", "work");
    const volumes = new AgentVolumes(f.stack, {
      meta,
      configMapName: "agent-config",
      secretNames: { keyring: "agent-keyring", tokens: "agent-tokens", auditSigning: "agent-audit-signing", tls: "agent-tls" },
      clientCaSecretName: "callers-ca",
      tier: f.tier,
      segment: f.segment,
    });
    const agent = agentContainer({ image: "img", volumes, tierMountPath: f.tier.mountPath });
    const runner = runnerContainer({ image: "img", volumes, gpuResource: "nvidia.com/gpu", gpus: 2, tierMountPath: f.tier.mountPath });
    expect(agent.volumes.filter((v) => v.holdsSecret).map((v) => v.name)).toEqual(["keyring", "tokens", "audit-signing", "tls", "client-ca"]);
    expect(agent.toSpec().volumeMount).toEqual(expect.arrayContaining([{ name: "keyring", mountPath: AGENT_PATHS.keyring, readOnly: true }]));
    expect(runner.secretFree).toBe(true);
    expect(runner.volumes.map((v) => v.name)).toEqual(["scratch", "models", "runner-socket"]);
    const spec = runner.toSpec();
    expect(spec.args).toEqual(["runner", "--socket", AGENT_PATHS.runnerSocket]);
    expect(spec.resources).toMatchObject({ requests: { "nvidia.com/gpu": "2" }, limits: { "nvidia.com/gpu": "2" } });
    expect(agent.toSpec().resources).not.toHaveProperty("limits.nvidia.com/gpu");
    // The runner cannot be handed a Secret afterwards either.
    expect(() => runner.mount("/keys", volumes.keyring)).toThrow(/holds no Secret/);
  });
});

describe("WorkflowDeployment composed from the parts", () => {
  it("keeps every object directly under the deployment, so Terraform addresses do not move", () => {
    const f = platform();
    new WorkflowDeployment(f.stack, "Pipeline", { name: "pipeline", pool: f.pool, tier: f.tier, segment: f.segment, tenants: [f.tenant], workflows: [] as Workflow[] });
    const r = synth(f.stack);
    const ids = r
      .allResources()
      .map((x) => x.logicalId)
      .filter((id) => id.startsWith("Pipeline_"))
      .map((id) => id.replace(/_[0-9A-F]{8}$/, ""))
      .sort();
    expect(ids).toEqual(
      [
        "Pipeline_Agent",
        "Pipeline_ApiEgressFrom-work",
        "Pipeline_ApiIngress",
        "Pipeline_AuditSinkVolume",
        "Pipeline_DisruptionBudget",
        "Pipeline_PlatformConfig",
        "Pipeline_Role",
        "Pipeline_RoleBinding",
        "Pipeline_Service",
        "Pipeline_ServiceAccount",
        "Pipeline_StateVolume",
      ].sort(),
    );
  });

  it("writes the runtime's scheduler defaults where none are given, and each setting given over its default", () => {
    const f = platform();
    const plain = new WorkflowDeployment(f.stack, "Plain", { name: "plain", pool: f.pool, tier: f.tier, segment: f.segment, tenants: [f.tenant], workflows: [] });
    const tuned = new WorkflowDeployment(f.stack, "Tuned", { name: "tuned", pool: f.pool, tier: f.tier, segment: f.segment, tenants: [f.tenant], workflows: [], scheduler: { agingSeconds: 60 } });
    expect(plain.platformConfig().scheduler).toEqual(SCHEDULER_DEFAULTS);
    expect(tuned.platformConfig().scheduler).toEqual({ ...SCHEDULER_DEFAULTS, agingSeconds: 60 });
    const cm = synth(f.stack).find("kubernetes_config_map_v1", "plain-config").config;
    expect(JSON.parse(cm.data[CONFIG_MAP_KEY]).scheduler).toEqual(SCHEDULER_DEFAULTS);
  });
});
