/**
 * `gpufabric check` over a generated 10,000-resource Terraform JSON: namespaces with their network
 * policies and GPU quotas, GPU and CPU workloads (some insecure, so findings are produced), services,
 * config maps, RBAC. Prints JSON: the median of several in-process runs (read + normalize + check +
 * SARIF, wall and CPU time) and of several runs of the CLI process itself (wall time, node and tsx
 * start-up included). `withinTarget` judges the CLI median against the 2 s target.
 *
 *   npm run bench:policies -- --json [--resources 10000] [--runs 7]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PACK_IDS, loadTerraformResources, render, runChecks } from "../policies/index.ts";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`--${name} must be a positive integer\n`);
    process.exit(2);
  }
  return value;
}

/** Resources per namespace: namespace, 2 network policies, quota, service account, 4 deployments, 2 services, config map, role, role binding, PDB, job = 16. */
function generate(target: number): { resource: Record<string, Record<string, unknown>> } {
  const r: Record<string, Record<string, unknown>> = {};
  const add = (type: string, name: string, body: unknown) => ((r[type] ??= {})[name] = body);
  let count = 0;
  for (let n = 0; count < target; n++) {
    const ns = `team-${n}`;
    const nsRef = `\${kubernetes_namespace_v1.ns_${n}.metadata[0].name}`;
    const emit = (type: string, name: string, body: unknown) => {
      if (count < target) {
        add(type, name, body);
        count++;
      }
    };
    emit("kubernetes_namespace_v1", `ns_${n}`, { metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": n % 7 === 0 ? "baseline" : "restricted" } } });
    emit("kubernetes_network_policy_v1", `deny_${n}`, { metadata: { name: "default-deny", namespace: nsRef }, spec: { pod_selector: {}, policy_types: ["Ingress", "Egress"] } });
    emit("kubernetes_network_policy_v1", `egress_${n}`, { metadata: { name: "egress", namespace: ns }, spec: { pod_selector: { match_labels: { tier: "web" } }, policy_types: ["Egress"], egress: [{ to: [{ ip_block: { cidr: n % 5 === 0 ? "0.0.0.0/0" : "10.0.0.0/8" } }] }] } });
    emit("kubernetes_resource_quota_v1", `quota_${n}`, { metadata: { name: "gpus", namespace: ns }, spec: { hard: { "requests.nvidia.com/gpu": "8" } } });
    emit("kubernetes_service_account_v1", `sa_${n}`, { metadata: { name: "default", namespace: ns }, automount_service_account_token: false });
    for (let d = 0; d < 4; d++) {
      const gpu = d % 2 === 0;
      const secure = (n + d) % 3 !== 0;
      emit("kubernetes_deployment_v1", `app_${n}_${d}`, {
        metadata: { name: `app-${d}`, namespace: nsRef, labels: { app: `app-${d}` } },
        spec: {
          replicas: 2,
          selector: { match_labels: { app: `app-${d}` } },
          template: {
            metadata: { labels: { app: `app-${d}`, tier: "web" } },
            spec: {
              ...(gpu ? { node_selector: { "nvidia.com/gpu.product": "NVIDIA-L4" }, toleration: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }] } : {}),
              security_context: { run_as_non_root: true, seccomp_profile: { type: "RuntimeDefault" } },
              container: [
                {
                  name: "main",
                  image: secure ? "registry.example/app@sha256:0123456789abcdef" : "registry.example/app:latest",
                  resources: { limits: { cpu: "2", memory: "4Gi", ...(gpu ? { "nvidia.com/gpu": "1" } : {}) } },
                  security_context: secure ? { read_only_root_filesystem: true, allow_privilege_escalation: false, capabilities: { drop: ["ALL"] } } : { privileged: true },
                  volume_mount: [{ name: "creds", mount_path: "/etc/creds", read_only: secure }],
                },
              ],
              volume: [{ name: "creds", secret: { secret_name: `creds-${d}` } }],
            },
          },
        },
      });
    }
    emit("kubernetes_service_v1", `svc_${n}`, { metadata: { name: "web", namespace: ns }, spec: { type: "ClusterIP", selector: { app: "app-0" }, port: [{ port: 80 }] } });
    emit("kubernetes_service_v1", `lb_${n}`, { metadata: { name: "public", namespace: ns }, spec: { type: "LoadBalancer", selector: { app: "app-1" }, port: [{ port: 443 }] } });
    emit("kubernetes_config_map_v1", `cm_${n}`, { metadata: { name: "settings", namespace: ns }, data: { "settings.yaml": "level: info\n" } });
    emit("kubernetes_role_v1", `role_${n}`, { metadata: { name: "reader", namespace: ns }, rule: [{ api_groups: [""], resources: ["pods"], verbs: n % 11 === 0 ? ["*"] : ["get", "list"] }] });
    emit("kubernetes_role_binding_v1", `rb_${n}`, { metadata: { name: "reader", namespace: ns }, role_ref: { api_group: "rbac.authorization.k8s.io", kind: "Role", name: "reader" }, subject: [{ kind: "Group", name: ns }] });
    emit("kubernetes_pod_disruption_budget_v1", `pdb_${n}`, { metadata: { name: "app-0", namespace: ns }, spec: { min_available: "1", selector: { match_labels: { app: "app-0" } } } });
    emit("kubernetes_job_v1", `job_${n}`, {
      metadata: { name: "migrate", namespace: ns },
      spec: { template: { metadata: { labels: { app: "migrate" } }, spec: { automount_service_account_token: false, container: [{ name: "migrate", image: "registry.example/migrate:1.2.0", resources: { limits: { cpu: "1", memory: "1Gi" } } }] } } },
    });
  }
  return { resource: r };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const resources = arg("resources", 10_000);
const runs = arg("runs", 7);
const cliRuns = arg("cli-runs", 3);
const dir = mkdtempSync(join(tmpdir(), "gpufabric-bench-"));
const file = join(dir, "generated.tf.json");
writeFileSync(file, JSON.stringify(generate(resources)));

const inProcess: number[] = [];
const inProcessCpu: number[] = [];
let summary = { resources: 0, findings: 0, evaluations: 0 };
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const loaded = loadTerraformResources(file);
  const report = runChecks(loaded, { packs: [...PACK_IDS] });
  render(report, "sarif", "bench");
  inProcess.push(performance.now() - start);
  const cpu = process.cpuUsage(cpuStart);
  inProcessCpu.push((cpu.user + cpu.system) / 1000);
  summary = { resources: loaded.length, findings: report.findings.length, evaluations: report.evaluations.length };
}

const cli = fileURLToPath(new URL("../bin/gpufabric.mjs", import.meta.url));
const cliTimes: number[] = [];
for (let i = 0; i < cliRuns; i++) {
  const start = performance.now();
  const run = spawnSync(process.execPath, [cli, "check", file, "--format", "sarif", "-o", join(dir, "report.sarif")], { encoding: "utf8" });
  cliTimes.push(performance.now() - start);
  if (run.status !== 1) {
    process.stderr.write(`gpufabric check exited ${run.status}, expected 1 (findings): ${run.stderr}\n`);
    process.exit(1);
  }
}
rmSync(dir, { recursive: true, force: true });

const targetMs = 2000;
const result = {
  benchmark: "policies.check",
  resources: summary.resources,
  rules: runChecks([], { packs: [...PACK_IDS] }).rules.length,
  findings: summary.findings,
  evaluations: summary.evaluations,
  runs,
  inProcessMedianMs: Math.round(median(inProcess)),
  inProcessMinMs: Math.round(Math.min(...inProcess)),
  // CPU time next to wall time: on a shared machine the wall time includes waiting for a core.
  inProcessCpuMedianMs: Math.round(median(inProcessCpu)),
  cliRuns,
  cliMedianMs: Math.round(median(cliTimes)),
  targetMs,
  cpus: cpus().length,
  loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
  withinTarget: median(cliTimes) < targetMs,
};
process.stdout.write(`${JSON.stringify(result, null, process.argv.includes("--json") ? 0 : 2)}\n`);
