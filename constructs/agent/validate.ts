/** Checks of WorkflowDeployment's props that need more than their types: every problem at once, each naming its field and fix. */
import { tryParseQuantityMiB } from "../../runtime/graph/index.ts";
import { validateCluster } from "../cluster/props.ts";
import { validateComfyUi } from "./comfyui.ts";
import { PropIssues } from "../validation.ts";
import type { WorkflowDeploymentProps } from "../workflow-deployment.ts";

export function validateProps(name: string, props: WorkflowDeploymentProps, gpus: number): void {
  const issues = new PropIssues(`WorkflowDeployment '${name}'`);
  // Objects get suffixes such as '-audit-signing': keep room for them.
  issues.dnsLabel("name", name, 50);
  if (props.clientCaSecretName !== undefined) issues.dnsLabel("clientCaSecretName", props.clientCaSecretName);
  if (props.stageSandbox !== undefined && props.stageSandbox !== "bubblewrap" && props.stageSandbox !== "container") {
    issues.add("stageSandbox", `must be "bubblewrap" (each stage in namespaces of its own) or "container" (the runner's container only), got '${String(props.stageSandbox)}'`);
  }
  if (props.tenants.length === 0) issues.add("tenants", "must name at least one Tenant: the agent serves only the tenants listed here");
  if (issues.positiveInt("gpus", gpus) && gpus > props.pool.gpusPerNode) {
    issues.add("gpus", `${gpus} GPUs cannot fit on one node of pool '${props.pool.name}' (${props.pool.gpusPerNode} per node): request at most ${props.pool.gpusPerNode}`);
  }
  for (const [field, value] of [
    ["stateSize", props.stateSize],
    ["auditSinkSize", props.auditSinkSize],
  ] as const) {
    const parsed = value === undefined ? undefined : tryParseQuantityMiB(value);
    if (parsed && !parsed.ok) issues.add(field, parsed.message);
  }
  const tenantNames = new Set(props.tenants.map((t) => t.name));
  const seenWorkflows = new Set<string>();
  props.workflows.forEach((wf, i) => {
    if (seenWorkflows.has(wf.name)) issues.add(`workflows[${i}]`, `duplicate workflow name '${wf.name}': give one of them another name`);
    seenWorkflows.add(wf.name);
    (wf.tenants ?? []).forEach((t, j) => {
      if (!tenantNames.has(t.name)) {
        issues.add(`workflows[${i}].tenants[${j}]`, `tenant '${t.name}' is not served by this deployment: add it to tenants, or drop it from the workflow`);
      }
    });
    const deviceMiB = props.pool.deviceMemoryMiB;
    for (const stage of wf.graph.format === "native" ? wf.graph.stages : []) {
      const at = `workflows[${i}] (${wf.name}).stages.${stage.id}.resources`;
      if (stage.resources.vramMiB > deviceMiB) {
        issues.add(
          `${at}.vram`,
          `${stage.resources.vramMiB} MiB exceeds the ${deviceMiB} MiB of one ${props.pool.model.name} device in pool '${props.pool.name}': lower it or bind the workflow to a pool with larger GPUs`,
        );
      }
      if (stage.resources.gpus > props.pool.gpusPerNode) {
        issues.add(
          `${at}.gpus`,
          `${stage.resources.gpus} GPUs do not fit on one node of pool '${props.pool.name}' (${props.pool.gpusPerNode} per node): multi-GPU stages run on a single node`,
        );
      }
    }
  });
  if (props.cluster !== undefined) validateCluster(issues, name, props.cluster, { pool: props.pool, tier: props.tier, gpus: props.gpus, stageSandbox: props.stageSandbox });
  if (props.comfyui !== undefined) {
    const nativeStages = props.workflows.flatMap((wf) => (wf.graph.format === "native" ? wf.graph.stages.map((s) => ({ workflow: wf.name, stage: s.id, gpus: s.resources.gpus })) : []));
    validateComfyUi(issues, props.comfyui, { podGpus: props.cluster !== undefined ? props.pool.gpusPerNode : gpus, cluster: props.cluster !== undefined, nativeStages });
  }
  issues.throwIfAny();
}
