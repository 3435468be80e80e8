/** WorkflowDeployment's comfyui option: the platform config's comfyui section and the ComfyUI server containers of `image`. */
import { Testing } from "cdktf";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FabricStack, GpuModel, GpuPool, NetworkSegment, StorageTier, Tenant, Workflow, WorkflowDeployment, type ComfyUiProps } from "../../constructs/index.ts";
import { CONFIG_MAP_KEY, parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";
import { synth, type Json } from "../support/synth.ts";

type Props = ConstructorParameters<typeof WorkflowDeployment>[2];
const IMAGE = "studio/comfyui:v0.3.60";

function platform() {
  const app = Testing.app();
  const stack = new FabricStack(app, "test", { platformName: "test", region: "eu-central" });
  const apps = new NetworkSegment(stack, "Apps", { name: "apps" });
  const studio = new NetworkSegment(stack, "StudioSegment", { name: "studio" });
  const alpha = new Tenant(stack, "Alpha", { name: "alpha", segment: apps });
  const pool = new GpuPool(stack, "Pool", { name: "l40s", model: GpuModel.L4_24GB, nodes: 2, gpusPerNode: 4, tenantQuotas: [{ tenant: alpha, gpus: 4 }] });
  const tier = new StorageTier(stack, "Shared", {
    name: "shared",
    tierClass: "warm",
    provisioner: "rook-ceph.cephfs.csi.ceph.com",
    encryption: { parameters: { encrypted: "true" } },
    accessModes: ["ReadWriteMany"],
  });
  const workflow = Workflow.native({
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name: "render" },
    spec: { stages: [{ id: "render", resources: { gpus: 1, vram: "8Gi" }, run: { command: ["node", "render.mjs"] } }] },
  });
  // Only ComfyUI prompts: every GPU may go to a ComfyUI server.
  const comfyOnly = [Workflow.fromFile(fileURLToPath(new URL("../../examples/comfyui/txt2img-upscale.json", import.meta.url)), { name: "txt2img-upscale" })];
  const props = (comfyui: ComfyUiProps | undefined, extra: Partial<Props> = {}): Props => ({
    name: "studio",
    pool,
    tier,
    segment: studio,
    tenants: [alpha],
    workflows: [workflow],
    ...(comfyui ? { comfyui } : {}),
    ...extra,
  });
  return { stack, pool, tier, props, comfyOnly };
}

const CLUSTER = { database: { secretName: "studio-database" } };

function configOf(r: ReturnType<typeof synth>): PlatformConfig {
  return parsePlatformConfig(JSON.parse(r.find("kubernetes_config_map_v1", "studio-config").config.data[CONFIG_MAP_KEY]));
}

const podOf = (workload: Json) => workload.spec.template.spec;
const containerNamed = (pod: Json, name: string) => pod.container.find((c: Json) => c.name === name);
const comfyContainers = (pod: Json) => pod.container.filter((c: Json) => c.name.startsWith("comfyui-"));

describe("WorkflowDeployment with comfyui", () => {
  it("without the option writes comfyui: null and adds no container", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Studio", p.props(undefined));
    const r = synth(p.stack);
    expect(configOf(r).comfyui).toBeNull();
    expect(podOf(r.find("kubernetes_deployment_v1", "studio").config).container.map((c: Json) => c.name)).toEqual(["agent", "runner"]);
    expect(containerNamed(podOf(r.find("kubernetes_deployment_v1", "studio").config), "agent").startup_probe).toBeUndefined();
  });

  it("single agent with image: a server container per GPU beside the runner, each holding one GPU, on its loopback port, models read-only", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Studio", p.props({ image: IMAGE, gpus: 3, modelsVolume: { mountPath: "/opt/ComfyUI/models" } }, { gpus: 3, workflows: p.comfyOnly }));
    const r = synth(p.stack);
    const pod = podOf(r.find("kubernetes_deployment_v1", "studio").config);
    expect(pod.container.map((c: Json) => c.name)).toEqual(["agent", "runner", "comfyui-0", "comfyui-1", "comfyui-2"]);
    // The pod's 3 GPUs go to the servers, one each; the runner holds none (a device goes to one container only).
    expect(JSON.stringify(containerNamed(pod, "runner").resources)).not.toContain("nvidia.com/gpu");
    const servers = comfyContainers(pod);
    servers.forEach((c: Json, i: number) => {
      expect(c.image).toBe(IMAGE);
      expect(c.resources.requests["nvidia.com/gpu"]).toBe("1");
      expect(c.resources.limits).toMatchObject({ "nvidia.com/gpu": "1", cpu: "4", memory: "32Gi" });
      expect(c.command.slice(0, 7)).toEqual(["python", "main.py", "--listen", "127.0.0.1", "--port", String(8190 + i), "--disable-auto-launch"]);
      expect(c.command).toContain("--output-directory");
      // Nothing exposes it: no container port, and it listens on loopback only.
      expect(c.port).toBeUndefined();
      expect(c.security_context).toMatchObject({ run_as_non_root: true, read_only_root_filesystem: true, allow_privilege_escalation: false, privileged: false, capabilities: { drop: ["ALL"] } });
      const mounts = Object.fromEntries(c.volume_mount.map((m: Json) => [m.mount_path, m]));
      expect(mounts["/opt/ComfyUI/models"]).toMatchObject({ name: "models", read_only: true });
      expect(mounts["/var/lib/comfyui"]).toMatchObject({ name: `comfyui-${i}-scratch` });
      expect(mounts["/var/lib/comfyui"].read_only).toBeUndefined();
      const env = Object.fromEntries(c.env.map((e: Json) => [e.name, e.value]));
      expect(env).toMatchObject({ HOME: "/var/lib/comfyui", TMPDIR: "/var/lib/comfyui" });
    });
    // Custom nodes run arbitrary code: the servers see no Secret.
    expect(JSON.stringify(servers)).not.toMatch(/secret/i);
    const volumes = Object.fromEntries(pod.volume.map((v: Json) => [v.name, v]));
    expect(volumes["comfyui-0-scratch"].empty_dir).toEqual({ size_limit: "20Gi" });
    // No Service selects the servers: the only Service is the agent's API, on its own port.
    for (const svc of r.resources("kubernetes_service_v1")) expect(JSON.stringify(svc.config.spec.port)).not.toContain("8190");

    const config = configOf(r);
    expect(config.comfyui).toEqual({
      mode: "segmented",
      image: IMAGE,
      portRange: { from: 8190, to: 8192 },
      startTimeoutMs: 120_000,
      modelsVolume: { claimName: "shared-models", mountPath: "/opt/ComfyUI/models" },
    });
  });

  it("single agent: by default every GPU of the pod gets a server and the runner requests none", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Studio", p.props({ image: IMAGE, mode: "whole-graph", portRange: { from: 9000 } }, { gpus: 2, workflows: p.comfyOnly }));
    const r = synth(p.stack);
    const pod = podOf(r.find("kubernetes_deployment_v1", "studio").config);
    expect(comfyContainers(pod)).toHaveLength(2);
    expect(JSON.stringify(containerNamed(pod, "runner").resources)).not.toContain("nvidia.com/gpu");
    // The agent reads its GPUs from the servers before it listens (up to startTimeoutMs, 120 s): its liveness probe waits for that.
    expect(containerNamed(pod, "agent").startup_probe).toMatchObject({ http_get: { path: "/healthz" }, period_seconds: 5, failure_threshold: 36 });
    expect(configOf(r).comfyui).toMatchObject({ mode: "whole-graph", portRange: { from: 9000, to: 9001 } });
    expect(configOf(r).comfyui?.modelsVolume).toBeUndefined();
  });

  it("cluster: the servers run beside every worker, from the node's GPUs, reading the node-local model cache by default", () => {
    const p = platform();
    new WorkflowDeployment(
      p.stack,
      "Studio",
      p.props(
        { image: IMAGE, gpus: 4, command: ["/app/start", "--port={port}", "--cuda-device", "{gpu}", "--output-directory", "/out"], workingDir: "/app", modelsVolume: { mountPath: "/models" }, resources: { memoryLimit: "48Gi" } },
        { cluster: CLUSTER, workflows: p.comfyOnly },
      ),
    );
    const r = synth(p.stack);
    const workers = podOf(r.find("kubernetes_stateful_set_v1", "studio-worker").config);
    expect(workers.container.map((c: Json) => c.name)).toEqual(["worker", "comfyui-0", "comfyui-1", "comfyui-2", "comfyui-3"]);
    expect(JSON.stringify(containerNamed(workers, "worker").resources)).not.toContain("nvidia.com/gpu");
    const last = containerNamed(workers, "comfyui-3");
    // {gpu} is 0: the container sees only its own GPU. A folder the command names is left as it is.
    expect(last.command).toEqual(["/app/start", "--port=8193", "--cuda-device", "0", "--output-directory", "/out", "--temp-directory", "/var/lib/comfyui/temp", "--input-directory", "/var/lib/comfyui/input", "--user-directory", "/var/lib/comfyui/user"]);
    expect(last.working_dir).toBe("/app");
    expect(last.resources.limits.memory).toBe("48Gi");
    expect(last.volume_mount.find((m: Json) => m.mount_path === "/models")).toMatchObject({ name: "model-cache", read_only: true });
    // The control planes run no ComfyUI server.
    expect(comfyContainers(podOf(r.find("kubernetes_deployment_v1", "studio-control-plane").config))).toEqual([]);
    // Node-local caches have no claim to name: the config carries none.
    expect(configOf(r).comfyui).toMatchObject({ image: IMAGE, portRange: { from: 8190, to: 8193 } });
    expect(configOf(r).comfyui?.modelsVolume).toBeUndefined();
    expect(configOf(r).comfyui?.command).toBeUndefined();
  });

  it("a named models claim is mounted read-only in every server and named in the config", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Studio", p.props({ image: IMAGE, modelsVolume: { claimName: "comfy-models", mountPath: "/models" } }, { cluster: CLUSTER, workflows: p.comfyOnly }));
    const r = synth(p.stack);
    const pod = podOf(r.find("kubernetes_stateful_set_v1", "studio-worker").config);
    expect(JSON.stringify(containerNamed(pod, "worker").resources)).not.toContain("nvidia.com/gpu");
    expect(pod.volume.find((v: Json) => v.name === "comfyui-models").persistent_volume_claim).toEqual({ claim_name: "comfy-models" });
    expect(containerNamed(pod, "comfyui-0").volume_mount.find((m: Json) => m.mount_path === "/models")).toMatchObject({ name: "comfyui-models", read_only: true });
    expect(configOf(r).comfyui?.modelsVolume).toEqual({ claimName: "comfy-models", mountPath: "/models" });
  });

  it("without image: the config tells the agent or worker to start servers from command, or to attach to servers; no container is added", () => {
    const p = platform();
    const command = ["python", "main.py", "--listen", "127.0.0.1", "--port", "{port}", "--cuda-device", "{gpu}"];
    new WorkflowDeployment(p.stack, "Studio", p.props({ command, workingDir: "/opt/ComfyUI", startTimeoutMs: 300_000 }, { cluster: CLUSTER }));
    const r = synth(p.stack);
    expect(comfyContainers(podOf(r.find("kubernetes_stateful_set_v1", "studio-worker").config))).toEqual([]);
    expect(containerNamed(podOf(r.find("kubernetes_stateful_set_v1", "studio-worker").config), "worker").resources.limits["nvidia.com/gpu"]).toBe("4");
    expect(configOf(r).comfyui).toEqual({ mode: "segmented", command, workingDir: "/opt/ComfyUI", portRange: { from: 8190, to: 8253 }, startTimeoutMs: 300_000 });

    const q = platform();
    const servers = [{ gpu: "node-a-g0", url: "http://127.0.0.1:8188" }];
    new WorkflowDeployment(q.stack, "Studio", q.props({ servers }));
    expect(configOf(synth(q.stack)).comfyui).toMatchObject({ servers });
  });

  describe("refuses, naming the field and the fix", () => {
    const attempt = (comfyui: ComfyUiProps, extra: Partial<Props> = {}) => () => {
      const p = platform();
      new WorkflowDeployment(p.stack, "Studio", p.props(comfyui, extra));
    };

    it("a server for more GPUs than the pod has", () => {
      expect(attempt({ image: IMAGE, gpus: 3 }, { gpus: 2 })).toThrow(/comfyui\.gpus: 3 servers need 3 GPUs but the agent pod requests 2: use at most 2/);
      expect(attempt({ image: IMAGE, gpus: 5 }, { cluster: CLUSTER })).toThrow(/comfyui\.gpus: 5 servers need 5 GPUs but the worker's node has 4/);
      expect(attempt({ image: IMAGE, gpus: 0 })).toThrow(/comfyui\.gpus: 0 is not a positive integer/);
    });

    it("no server at all, or settings that only apply with image", () => {
      expect(attempt({})).toThrow(/comfyui: names no ComfyUI server: give image/);
      expect(attempt({ servers: [{ gpu: "g0", url: "http://127.0.0.1:8188" }], gpus: 1 })).toThrow(/comfyui\.gpus: applies only with image/);
      expect(attempt({ image: IMAGE, servers: [{ gpu: "g0", url: "http://127.0.0.1:8188" }] })).toThrow(/comfyui\.servers: does not apply with image/);
    });

    it("a command without {port}, ports that do not fit, the runtime's own rules", () => {
      expect(attempt({ image: IMAGE, command: ["python", "main.py"] })).toThrow(/comfyui\.command: must pass the server its port: put '\{port\}'/);
      expect(attempt({ image: IMAGE, portRange: { from: 9000, to: 9001 } })).toThrow(/comfyui\.portRange: 9000-9001 holds 2 port\(s\) for 4 servers/);
      expect(attempt({ image: IMAGE, portRange: { from: 8440 } })).toThrow(/comfyui\.portRange: ports 8440-8443 include 8443, the agent's own port/);
      expect(attempt({ command: ["x", "{port}"], startTimeoutMs: 10 })).toThrow(/comfyui\.startTimeoutMs:/);
      expect(attempt({ servers: [{ gpu: "g0", url: "not a url" }] })).toThrow(/comfyui\.servers\.0\.url: must be a URL/);
      expect(attempt({ command: ["x", "{port}"], servers: [{ gpu: "g0", url: "http://127.0.0.1:1" }] })).toThrow(/comfyui\.servers: give 'command' or 'servers', not both/);
    });

    it("GPUs for ComfyUI that leave a native stage without enough", () => {
      expect(attempt({ image: IMAGE })).toThrow(/comfyui\.gpus \(defaults to all of the pod's GPUs\): leaves the runner 0 GPU\(s\), but stage 'render' of workflow 'render' needs 1: with image every GPU of the pod goes to a ComfyUI server, so run that workflow on another deployment/);
      expect(attempt({ image: IMAGE, gpus: 4 }, { cluster: CLUSTER })).toThrow(/comfyui\.gpus: leaves the worker 0 GPU\(s\), but stage 'render'/);
    });

    it("a split of the pod's GPUs between the servers and the runner or worker (the agent could not keep the stages apart)", () => {
      const comfyOnly = platform().comfyOnly;
      expect(attempt({ image: IMAGE, gpus: 3 }, { gpus: 4, workflows: comfyOnly })).toThrow(/comfyui\.gpus: 3 of the 4 GPUs the agent pod requests would leave 1 to the runner, and such a split is not supported .*: drop comfyui\.gpus and request 3 GPU\(s\) for the deployment \(gpus: 3\)/);
      expect(attempt({ image: IMAGE, gpus: 1 }, { cluster: CLUSTER, workflows: comfyOnly })).toThrow(/comfyui\.gpus: 1 of the 4 GPUs the worker's node has would leave 3 to the worker, and such a split is not supported .*drop comfyui\.gpus/);
    });

    it("a models volume without a usable path or claim", () => {
      expect(attempt({ image: IMAGE, modelsVolume: { mountPath: "models" } })).toThrow(/comfyui\.modelsVolume\.mountPath: "models" must be an absolute path/);
      expect(attempt({ image: IMAGE, modelsVolume: { mountPath: "/m", claimName: "Models_1" } })).toThrow(/comfyui\.modelsVolume\.claimName: "Models_1" is not a DNS-1123 label/);
      expect(attempt({ image: IMAGE, scratchSize: "lots" })).toThrow(/comfyui\.scratchSize:/);
    });
  });
});
