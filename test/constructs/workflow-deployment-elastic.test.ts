/** WorkflowDeployment's cluster.elasticity: the scaler's one Role, the workers' replicas left to it, the config it reads. */
import { describe, expect, it } from "vitest";
import { WorkflowDeployment, type ClusterProps } from "../../constructs/index.ts";
import { synth } from "../support/synth.ts";
import { configOf as configNamed, platform, podOf } from "./cluster-deployment-fixture.ts";

/** The pool has 4 nodes: elasticity may ask for up to 4 workers (the limit test names it). */
function build(cluster: Partial<ClusterProps>) {
  const p = platform({ nodes: 4 });
  new WorkflowDeployment(p.stack, "Batch", p.props({}, cluster));
  return synth(p.stack);
}

const configOf = (r: ReturnType<typeof synth>) => configNamed(r, "batch");

describe("WorkflowDeployment with cluster.elasticity", () => {
  it("lets the control planes' ServiceAccount get, patch and update the worker StatefulSet's scale, and nothing else", () => {
    const r = build({ elasticity: { maxWorkers: 3, scaleDownCooldownSeconds: 600 } });
    const roleResource = r.find("kubernetes_role_v1", "batch-worker-scale");
    const role = roleResource.config;
    expect(role.metadata.namespace).toBe("batch");
    expect(role.rule).toEqual([{ api_groups: ["apps"], resources: ["statefulsets/scale"], resource_names: ["batch-worker"], verbs: ["get", "patch", "update"] }]);
    const binding = r.find("kubernetes_role_binding_v1", "batch-worker-scale").config;
    const controlPlane = r.find("kubernetes_deployment_v1", "batch-control-plane").config;
    expect(binding.role_ref).toEqual({ api_group: "rbac.authorization.k8s.io", kind: "Role", name: `\${kubernetes_role_v1.${roleResource.logicalId}.metadata[0].name}` });
    const sa = r.find("kubernetes_service_account_v1", "batch");
    expect(podOf(controlPlane).service_account_name).toBe(`\${kubernetes_service_account_v1.${sa.logicalId}.metadata[0].name}`);
    expect(binding.subject).toEqual([{ kind: "ServiceAccount", name: podOf(controlPlane).service_account_name, namespace: "batch" }]);
    // No other Role of the deployment names a workload or the apps API group.
    const others = r.resources("kubernetes_role_v1").filter((x) => x.config.metadata.name !== "batch-worker-scale");
    for (const o of others) for (const rule of o.config.rule) expect(rule.api_groups).not.toContain("apps");
    // The control planes mount their token (they call the API server) and may reach it; workers still mount none.
    expect(podOf(controlPlane).automount_service_account_token).toBe(true);
    const workers = r.find("kubernetes_stateful_set_v1", "batch-worker").config;
    expect(podOf(workers).automount_service_account_token).toBe(false);
    const egress = r.find("kubernetes_network_policy_v1", "batch-control-plane-egress").config.spec.egress;
    expect(egress).toContainEqual({ ports: [{ protocol: "TCP", port: "443" }, { protocol: "TCP", port: "6443" }] });
  });

  it("starts the workers at minWorkers (0: from zero) and leaves their replicas to the scaler from then on", () => {
    const r = build({ elasticity: {} });
    const workers = r.find("kubernetes_stateful_set_v1", "batch-worker").config;
    expect(workers.spec.replicas).toBe("0");
    expect(workers.lifecycle).toEqual({ ignore_changes: ["spec[0].replicas"] });
    expect(build({ elasticity: { minWorkers: 2 } }).find("kubernetes_stateful_set_v1", "batch-worker").config.spec.replicas).toBe("2");
    // A scale-down's SIGTERM drains a worker: its stages get the grace period to finish, not the usual 60 s.
    expect(podOf(workers).termination_grace_period_seconds).toBe(3600);
    expect(podOf(build({ elasticity: { drainGraceSeconds: 7200 } }).find("kubernetes_stateful_set_v1", "batch-worker").config).termination_grace_period_seconds).toBe(7200);
    expect(podOf(build({}).find("kubernetes_stateful_set_v1", "batch-worker").config).termination_grace_period_seconds).toBe(60);
  });

  it("writes the elasticity the control plane reads, naming the StatefulSet it scales", () => {
    const config = configOf(build({ elasticity: { minWorkers: 1, maxWorkers: 3, scaleDownCooldownSeconds: 600 } }));
    expect(config.cluster!.elasticity).toEqual({
      enabled: true,
      minWorkers: 1,
      maxWorkers: 3,
      scaleDownCooldownSeconds: 600,
      batchScaleUpDelaySeconds: 30,
      intervalSeconds: 5,
      provider: { type: "kubernetes", namespace: "batch", kind: "StatefulSet", name: "batch-worker", serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount" },
    });
  });

  it("with provider none (KEDA): no Role, no token, no API server egress, and still no replica fight with Terraform", () => {
    const r = build({ elasticity: { provider: "none" } });
    expect(r.named("kubernetes_role_v1", "batch-worker-scale")).toEqual([]);
    expect(podOf(r.find("kubernetes_deployment_v1", "batch-control-plane").config).automount_service_account_token).toBe(false);
    expect(JSON.stringify(r.find("kubernetes_network_policy_v1", "batch-control-plane-egress").config)).not.toContain("6443");
    expect(r.find("kubernetes_stateful_set_v1", "batch-worker").config.lifecycle).toEqual({ ignore_changes: ["spec[0].replicas"] });
    expect(configOf(r).cluster!.elasticity.provider).toEqual({ type: "none" });
  });

  it("without elasticity keeps today's shape: one worker per node, replicas Terraform's, no scale Role, elasticity off", () => {
    const r = build({});
    const workers = r.find("kubernetes_stateful_set_v1", "batch-worker").config;
    expect(workers.spec.replicas).toBe("4");
    expect(workers.lifecycle).toBeUndefined();
    expect(r.named("kubernetes_role_v1", "batch-worker-scale")).toEqual([]);
    expect(configOf(r).cluster!.elasticity.enabled).toBe(false);
  });

  it("narrows the API server egress to its CIDR when given", () => {
    const egress = build({ elasticity: { apiServerCidr: "10.0.0.1/32" } }).find("kubernetes_network_policy_v1", "batch-control-plane-egress").config.spec.egress;
    expect(egress).toContainEqual({ to: [{ ip_block: { cidr: "10.0.0.1/32" } }], ports: [{ protocol: "TCP", port: "443" }, { protocol: "TCP", port: "6443" }] });
  });

  it("refuses, naming the field and the fix", () => {
    const attempt = (cluster: Partial<ClusterProps>) => () => build(cluster);
    expect(attempt({ elasticity: { maxWorkers: 5 } })).toThrow(/cluster\.elasticity\.maxWorkers: 5 workers for the 4 node\(s\) of pool 'h100'.*use at most 4/);
    expect(attempt({ elasticity: { minWorkers: 3, maxWorkers: 2 } })).toThrow(/cluster\.elasticity\.minWorkers: 3 is above maxWorkers 2: lower minWorkers or raise maxWorkers/);
    expect(attempt({ elasticity: { minWorkers: -1 } })).toThrow(/cluster\.elasticity\.minWorkers: -1 is not a whole number of 0 or more/);
    expect(attempt({ elasticity: {}, workers: { kind: "daemonset" } })).toThrow(/cluster\.elasticity: needs workers of kind "statefulset"/);
    expect(attempt({ elasticity: { maxWorkers: 2 }, workers: { replicas: 3 } })).toThrow(/cluster\.workers\.replicas: 3 is outside elasticity's 0 to 2 workers/);
    expect(attempt({ elasticity: { scaleDownCooldownSeconds: 100_000 } })).toThrow(/cluster\.elasticity\.scaleDownCooldownSeconds: 100000: must be at most 86400/);
    expect(attempt({ elasticity: { drainGraceSeconds: 0 } })).toThrow(/cluster\.elasticity\.drainGraceSeconds/);
    expect(attempt({ elasticity: { provider: "keda" as never } })).toThrow(/cluster\.elasticity\.provider: "keda" is not "kubernetes"/);
  });
});
