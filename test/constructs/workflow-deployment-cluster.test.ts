/** WorkflowDeployment's cluster option: control planes without GPUs, a worker per GPU node, their policies and config. */
import { describe, expect, it } from "vitest";
import { GpuModel, WorkflowDeployment, type ClusterProps } from "../../constructs/index.ts";
import { CONFIG_MAP_KEY } from "../../runtime/config/index.ts";
import { ClusterSchema } from "../../runtime/config/schema.ts";
import { synth, type Json } from "../support/synth.ts";
import { configOf, platform, podOf, type Props } from "./cluster-deployment-fixture.ts";

const envNames = (container: Json): string[] => (container.env ?? []).map((e: Json) => e.name);

describe("WorkflowDeployment with cluster", () => {
  it("runs two control planes without GPUs, spread over nodes, rolling one at a time, with a disruption budget", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props());
    const r = synth(p.stack);
    expect(r.names("kubernetes_deployment_v1")).toEqual(["batch-control-plane"]);
    const cp = r.find("kubernetes_deployment_v1", "batch-control-plane").config;
    expect(cp.spec.replicas).toBe("2");
    expect(cp.spec.strategy).toEqual({ type: "RollingUpdate", rolling_update: { max_unavailable: "0", max_surge: "1" } });
    const pod = podOf(cp);
    expect(JSON.stringify(pod)).not.toContain("nvidia.com/gpu");
    expect(pod.toleration).toBeUndefined();
    expect(pod.topology_spread_constraint[0]).toMatchObject({ topology_key: "kubernetes.io/hostname", max_skew: 1, when_unsatisfiable: "DoNotSchedule" });
    expect(pod.affinity.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution[0].pod_affinity_term.topology_key).toBe("kubernetes.io/hostname");
    const [agent] = pod.container;
    expect(pod.container).toHaveLength(1);
    expect(agent.args).toEqual(["agent", "--config", "/etc/gpufabric/platform.json"]);
    // POD_IP before the URL built from it: Kubernetes expands $(VAR) only from variables declared earlier.
    const env = Object.fromEntries(agent.env.map((e: Json) => [e.name, e]));
    expect(envNames(agent).indexOf("POD_IP")).toBeLessThan(envNames(agent).indexOf("GPUFABRIC_ADVERTISE_URL"));
    expect(env.GPUFABRIC_ADVERTISE_URL.value).toBe("https://$(POD_IP):8443");
    expect(env.POD_IP.value_from.field_ref.field_path).toBe("status.podIP");
    expect(env.GPUFABRIC_NODE_NAME.value_from.field_ref.field_path).toBe("spec.nodeName");
    expect(env.GPUFABRIC_DATABASE_URL.value_from.secret_key_ref).toMatchObject({ name: "batch-database", key: "url" });
    const secrets = pod.volume.filter((v: Json) => v.secret).map((v: Json) => v.secret.secret_name).sort();
    expect(secrets).toEqual(["batch-audit-signing", "batch-keyring", "batch-tls", "batch-tokens", "batch-worker-token-hashes"]);
    const mounts = Object.fromEntries(agent.volume_mount.map((m: Json) => [m.name, m]));
    const defaults = ClusterSchema.parse({});
    expect(mounts["worker-token-hashes"]).toMatchObject({ mount_path: defaults.workerTokens.mountPath, read_only: true });
    expect(mounts.shared.mount_path).toBe(defaults.sharedDir);
    const pdb = r.find("kubernetes_pod_disruption_budget_v1", "batch-control-plane").config;
    expect(pdb.spec.min_available).toBe("1");
    expect(pdb.spec.selector.match_labels).toEqual(cp.spec.selector.match_labels);
    // The API Service selects the control planes.
    expect(r.find("kubernetes_service_v1", "batch").config.spec.selector).toEqual(cp.spec.selector.match_labels);
  });

  it("runs one worker per GPU node in a StatefulSet, with all of the node's GPUs and required anti-affinity", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props());
    const r = synth(p.stack);
    const sts = r.find("kubernetes_stateful_set_v1", "batch-worker").config;
    expect(sts.spec.replicas).toBe(String(p.pool.nodes));
    expect(sts.spec.service_name).toMatch(/kubernetes_service_v1\.Batch_WorkerService/);
    expect(r.find("kubernetes_service_v1", "batch-workers").config.spec.cluster_ip).toBe("None");
    const pod = podOf(sts);
    const term = pod.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution[0];
    expect(term.topology_key).toBe("kubernetes.io/hostname");
    expect(term.label_selector[0].match_labels).toEqual(sts.spec.selector.match_labels);
    expect(pod.node_selector).toMatchObject({ "nvidia.com/gpu.product": GpuModel.H100_80GB.product });
    expect(pod.toleration).toEqual(expect.arrayContaining([expect.objectContaining({ key: "nvidia.com/gpu", effect: "NoSchedule" })]));
    expect(pod.automount_service_account_token).toBe(false);
    const [worker] = pod.container;
    expect(worker.resources.requests["nvidia.com/gpu"]).toBe("8");
    expect(worker.resources.limits["nvidia.com/gpu"]).toBe("8");
    expect(worker.args).toEqual([
      "worker",
      "--config",
      "/etc/gpufabric/platform.json",
      "--control-plane",
      "https://batch.batch.svc:443",
      "--token-file",
      "/var/run/gpufabric/worker-token/$(POD_NAME)",
      "--node",
      "$(GPUFABRIC_NODE_NAME)",
      "--ca-file",
      "/var/run/secrets/gpufabric/tls/ca.crt",
    ]);
    expect(worker.env.find((e: Json) => e.name === "POD_NAME").value_from.field_ref.field_path).toBe("metadata.name");
    expect(r.find("kubernetes_pod_disruption_budget_v1", "batch-worker").config.spec.max_unavailable).toBe("1");
    const sa = r.find("kubernetes_service_account_v1", "batch-worker").config;
    expect(sa.automount_service_account_token).toBe(false);
    expect(pod.service_account_name).toMatch(/Batch_WorkerServiceAccount/);
    // Workers are not the agent: nothing selects them as such, and the API Service does not reach them.
    expect(sts.spec.selector.match_labels["app.kubernetes.io/name"]).toBe("gpufabric-worker");
  });

  it("gives workers no database credential, no keyring, no API tokens, no signing key and no TLS key", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props());
    const r = synth(p.stack);
    const pod = podOf(r.find("kubernetes_stateful_set_v1", "batch-worker").config);
    const text = JSON.stringify(pod);
    for (const secret of ["batch-database", "batch-keyring", "batch-tokens", "batch-audit-signing", "batch-worker-token-hashes"]) expect(text, secret).not.toContain(secret);
    expect(text).not.toContain("secret_key_ref");
    expect(envNames(pod.container[0])).not.toContain("GPUFABRIC_DATABASE_URL");
    const secretVolumes = pod.volume.filter((v: Json) => v.secret);
    expect(secretVolumes.map((v: Json) => v.secret.secret_name).sort()).toEqual(["batch-tls", "batch-worker-tokens"]);
    // Of the TLS Secret only the CA certificate: the control plane's private key stays off GPU nodes.
    expect(secretVolumes.find((v: Json) => v.secret.secret_name === "batch-tls").secret.items).toEqual([{ key: "ca.crt", path: "ca.crt" }]);
    for (const m of pod.container[0].volume_mount.filter((m: Json) => ["worker-tokens", "ca-certificate"].includes(m.name))) expect(m.read_only).toBe(true);
    const volumes = Object.fromEntries(pod.volume.map((v: Json) => [v.name, v]));
    expect(volumes.scratch.empty_dir.medium).toBe("Memory");
    expect(volumes.shared.persistent_volume_claim.claim_name).toMatch(/Batch_SharedVolume/);
  });

  it("shares one ReadWriteMany claim on the tier's class, and keeps the audit sink on one too", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, { sharedStorageSize: "2Ti" }));
    const r = synth(p.stack);
    const shared = r.find("kubernetes_persistent_volume_claim_v1", "batch-shared").config;
    expect(shared.spec).toMatchObject({ access_modes: ["ReadWriteMany"], storage_class_name: "shared", resources: { requests: { storage: "2Ti" } } });
    expect(r.find("kubernetes_persistent_volume_claim_v1", "batch-audit").config.spec.access_modes).toEqual(["ReadWriteMany"]);
    // No single-agent state claim: the store is PostgreSQL.
    expect(r.names("kubernetes_persistent_volume_claim_v1")).not.toContain("batch-state");
  });

  it("lets workers reach only the control planes and DNS, and control planes only the database and DNS", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, { database: { secretName: "batch-database", cidr: "10.40.0.0/24", port: 6432 } }));
    const r = synth(p.stack);
    const cpLabels = r.find("kubernetes_deployment_v1", "batch-control-plane").config.spec.selector.match_labels;
    const workerLabels = r.find("kubernetes_stateful_set_v1", "batch-worker").config.spec.selector.match_labels;
    const dns = { to: [{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "kube-system" } } }], ports: [{ protocol: "UDP", port: "53" }, { protocol: "TCP", port: "53" }] };

    const worker = r.find("kubernetes_network_policy_v1", "batch-worker", "batch").config.spec;
    expect(worker.pod_selector.match_labels).toEqual(workerLabels);
    expect(worker.policy_types).toEqual(["Ingress", "Egress"]);
    expect(worker.ingress).toBeUndefined();
    expect(worker.egress).toEqual([{ to: [{ pod_selector: { match_labels: cpLabels } }], ports: [{ protocol: "TCP", port: "8443" }] }, dns]);

    const egress = r.find("kubernetes_network_policy_v1", "batch-control-plane-egress").config.spec;
    expect(egress.pod_selector.match_labels).toEqual(cpLabels);
    expect(egress.egress).toEqual([{ to: [{ ip_block: { cidr: "10.40.0.0/24" } }], ports: [{ protocol: "TCP", port: "6432" }] }, dns]);

    const fromWorkers = r.find("kubernetes_network_policy_v1", "batch-control-plane-from-workers").config.spec;
    expect(fromWorkers.ingress).toEqual([{ from: [{ pod_selector: { match_labels: workerLabels } }], ports: [{ protocol: "TCP", port: "8443" }] }]);
    // The API stays open to the allowed segments, on its port only.
    const api = r.find("kubernetes_network_policy_v1", "batch-api-ingress").config.spec;
    expect(api.pod_selector.match_labels).toEqual(cpLabels);
  });

  it("admits an in-cluster database by namespace and pod labels, and any address on the port when none is given", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, { database: { secretName: "batch-database", namespace: "databases", podLabels: { "cnpg.io/cluster": "pg" } } }));
    const q = platform();
    new WorkflowDeployment(q.stack, "Batch", q.props());
    const inCluster = synth(p.stack).find("kubernetes_network_policy_v1", "batch-control-plane-egress").config.spec.egress[0];
    expect(inCluster.to).toEqual([{ namespace_selector: { match_labels: { "kubernetes.io/metadata.name": "databases" } }, pod_selector: { match_labels: { "cnpg.io/cluster": "pg" } } }]);
    const anywhere = synth(q.stack).find("kubernetes_network_policy_v1", "batch-control-plane-egress").config.spec.egress[0];
    expect(anywhere).toEqual({ ports: [{ protocol: "TCP", port: "5432" }] });
  });

  it("writes a cluster section the runtime parses, workers sandboxing stages themselves", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, { controlPlaneReplicas: 3, leaderLeaseMs: 8000, database: { secretName: "batch-database", sslMode: "verify-ca" } }));
    const r = synth(p.stack);
    const config = configOf(r, "batch");
    const defaults = ClusterSchema.parse({});
    expect(config.cluster).toEqual({ ...defaults, controlPlaneReplicas: 3, leaderLeaseMs: 8000, databaseSslMode: "verify-ca" });
    expect(config.isolation).toMatchObject({ mode: "bubblewrap", sandbox: "bubblewrap", modelCacheDir: `${p.tier.mountPath}/models` });
    expect(r.find("kubernetes_deployment_v1", "batch-control-plane").config.spec.replicas).toBe("3");
    expect(r.find("kubernetes_pod_disruption_budget_v1", "batch-control-plane").config.spec.min_available).toBe("2");
    // The URL (and its password) never reaches the config.
    expect(r.find("kubernetes_config_map_v1", "batch-config").config.data[CONFIG_MAP_KEY]).not.toMatch(/postgres(ql)?:\/\//);
    const worker = podOf(r.find("kubernetes_stateful_set_v1", "batch-worker").config).container[0];
    expect(worker.volume_mount.find((m: Json) => m.name === "model-cache").mount_path).toBe(config.isolation.modelCacheDir);
  });

  it("runs workers as a DaemonSet when asked, keyed by node name", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, { workers: { kind: "daemonset" } }));
    const r = synth(p.stack);
    expect(r.resources("kubernetes_stateful_set_v1")).toEqual([]);
    expect(r.named("kubernetes_service_v1", "batch-workers")).toEqual([]);
    const ds = r.find("kubernetes_daemon_set_v1", "batch-worker").config;
    const worker = podOf(ds).container[0];
    expect(worker.args[worker.args.indexOf("--token-file") + 1]).toBe("/var/run/gpufabric/worker-token/$(GPUFABRIC_NODE_NAME)");
    expect(worker.resources.limits["nvidia.com/gpu"]).toBe("8");
  });

  it("keeps today's single agent without the option: one Deployment with its runner, no workers, cluster null", () => {
    const p = platform();
    new WorkflowDeployment(p.stack, "Batch", p.props({}, null));
    const r = synth(p.stack);
    expect(r.names("kubernetes_deployment_v1")).toEqual(["batch"]);
    expect(r.find("kubernetes_deployment_v1", "batch").config.spec.strategy.type).toBe("Recreate");
    expect(r.resources("kubernetes_stateful_set_v1")).toEqual([]);
    expect(r.resources("kubernetes_daemon_set_v1")).toEqual([]);
    const config = configOf(r, "batch");
    expect(config.cluster).toBeNull();
    expect(config.isolation.mode).toBe("runner");
    expect(JSON.parse(r.find("kubernetes_config_map_v1", "batch-config").config.data[CONFIG_MAP_KEY]).cluster).toBeNull();
  });

  describe("refuses, naming the field and the fix", () => {
    const attempt = (extra: Partial<Props>, cluster: Partial<ClusterProps>, options?: Parameters<typeof platform>[0]) => () => {
      const p = platform(options);
      new WorkflowDeployment(p.stack, "Batch", p.props(extra, cluster));
    };
    it("bad database settings", () => {
      expect(attempt({}, { database: { secretName: "Batch_DB" } })).toThrow(/cluster\.database\.secretName: "Batch_DB" is not a Secret name/);
      expect(attempt({}, { database: undefined as never })).toThrow(/cluster\.database: is missing/);
      expect(attempt({}, { database: { secretName: "db", sslMode: "prefer" as never } })).toThrow(/cluster\.database\.sslMode: "prefer" is not one of "verify-full"/);
      expect(attempt({}, { database: { secretName: "db", cidr: "10.40.0.1/24" } })).toThrow(/cluster\.database\.cidr: '10\.40\.0\.1\/24' has host bits set/);
      expect(attempt({}, { database: { secretName: "db", cidr: "10.40.0.0/24", namespace: "pg" } })).toThrow(/gives both cidr and namespace/);
      expect(attempt({}, { database: { secretName: "db", podLabels: { app: "pg" } } })).toThrow(/cluster\.database\.podLabels: needs namespace/);
      expect(attempt({}, { database: { secretName: "db", port: 70000 } })).toThrow(/cluster\.database\.port: 70000 is not a port/);
    });
    it("replica counts that cannot run", () => {
      expect(attempt({}, { controlPlaneReplicas: 0 })).toThrow(/cluster\.controlPlaneReplicas/);
      expect(attempt({}, { workers: { replicas: 0 } })).toThrow(/cluster\.workers\.replicas/);
      expect(attempt({}, { workers: { replicas: 4 } })).toThrow(/cluster\.workers\.replicas: 4 workers for the 3 node\(s\) of pool 'h100'.*use at most 3/);
      expect(attempt({}, { workers: { kind: "daemonset", replicas: 2 } })).toThrow(/cluster\.workers\.replicas: does not apply to a DaemonSet/);
      expect(attempt({}, { workers: { kind: "deployment" as never } })).toThrow(/cluster\.workers\.kind/);
    });
    it("a shared tier without ReadWriteMany, leases the runtime refuses, and options of the single agent", () => {
      expect(attempt({}, {}, { accessModes: ["ReadWriteOnce"] })).toThrow(/cluster\.sharedTier \(defaults to tier\): tier 'shared' offers ReadWriteOnce, not ReadWriteMany/);
      expect(attempt({}, { leaderLeaseMs: 100 })).toThrow(/cluster\.leaderLeaseMs: 100/);
      expect(attempt({}, { workerLeaseMs: 1.5 })).toThrow(/cluster\.workerLeaseMs/);
      expect(attempt({ gpus: 4 }, {})).toThrow(/gpus: does not apply with cluster/);
      expect(attempt({ stageSandbox: "container" }, {})).toThrow(/stageSandbox: "container" does not apply with cluster/);
      expect(attempt({ name: "a".repeat(46) }, {})).toThrow(/with cluster, use at most 45/);
      expect(attempt({}, { sharedStorageSize: "lots" })).toThrow(/cluster\.sharedStorageSize/);
    });
  });
});
