/**
 * The workers of a cluster: `gpufabric worker` on every GPU node of the pool, holding all of that node's
 * GPUs and running its stages, each in a bubblewrap sandbox. A worker talks only to the control plane,
 * over TLS with a token of its own: it holds no database credential, no keyring, no API tokens and no
 * audit signing key.
 *
 * A StatefulSet by default: stable pod names (the keys of the token Secret), one pod per node through
 * required anti-affinity, and a scale the elasticity work can set (KEDA cannot scale a DaemonSet). A
 * DaemonSet on request, for pools of a fixed size.
 */
import { DaemonSetV1 } from "@cdktf/provider-kubernetes/lib/daemon-set-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { ServiceAccountV1 } from "@cdktf/provider-kubernetes/lib/service-account-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { StatefulSetV1 } from "@cdktf/provider-kubernetes/lib/stateful-set-v1/index.js";
import type { Construct } from "constructs";
import { CONFIG_MAP_KEY } from "../../runtime/config/index.ts";
import type { ContainerResources } from "../agent/agent-container.ts";
import { Container } from "../agent/container.ts";
import type { AgentMetadata } from "../agent/metadata.ts";
import { AGENT_PATHS, AGENT_UID } from "../agent/paths.ts";
import { PodSpec } from "../agent/pod-spec.ts";
import type { GpuPool } from "../gpu-pool.ts";
import { HOSTNAME_TOPOLOGY } from "./control-plane.ts";
import type { ResolvedCluster } from "./props.ts";
import type { ClusterVolumes } from "./volumes.ts";
import { DEFAULT_DRAIN_GRACE_SECONDS } from "./elasticity.ts";

/** Where a worker finds the token Secret; the file it reads is named after its pod (or, in a DaemonSet, its node). */
export const WORKER_TOKEN_DIR = "/var/run/gpufabric/worker-token";

export interface WorkersProps {
  /** The workers' metadata (role `worker`): nothing selects them as the agent. */
  readonly meta: AgentMetadata;
  readonly image: string;
  readonly pool: GpuPool;
  readonly volumes: ClusterVolumes;
  readonly cluster: ResolvedCluster;
  /** The API Service of the control planes, in `meta.namespace`. */
  readonly serviceName: string;
  /** Its port. */
  readonly servicePort: number;
  /** Where the tier mounts models: the node-local cache goes at `<tierMountPath>/models`, as the config's modelCacheDir says. */
  readonly tierMountPath: string;
  /** @default requests 2 CPUs and 8Gi, limits 8 CPUs and 32Gi */
  readonly resources?: ContainerResources;
  /** GPUs the worker's container holds. @default the pool's gpusPerNode; fewer when ComfyUI server containers hold the others */
  readonly gpus?: number;
  /** ComfyUI server containers beside the worker, each holding one of the node's GPUs. @default none */
  readonly comfyUiContainers?: readonly Container[];
}

export class Workers {
  readonly workload: StatefulSetV1 | DaemonSetV1;
  readonly serviceAccount: ServiceAccountV1;
  /** The StatefulSet's governing (headless) Service; none for a DaemonSet. */
  readonly headlessService: ServiceV1 | undefined;
  readonly disruptionBudget: PodDisruptionBudgetV1;
  /** The workload's name; StatefulSet pods are `<name>-0`, `<name>-1`, … */
  readonly name: string;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: WorkersProps) {
    const { meta, cluster } = props;
    const selector = { ...meta.selector };
    this.name = `${meta.name}-worker`;
    // An identity of its own, and no Kubernetes API token: a worker needs none.
    this.serviceAccount = new ServiceAccountV1(scope, "WorkerServiceAccount", { metadata: meta.of(this.name), automountServiceAccountToken: false });
    const statefulSet = cluster.workerKind === "statefulset";
    const pod = new PodSpec({
      serviceAccountName: this.serviceAccount.metadata.name,
      uid: AGENT_UID,
      priorityClassName: props.pool.priorityClassName("interactive"),
      nodeSelector: props.pool.nodeSelector,
      tolerations: props.pool.tolerations,
      // Elastic: a scale-down's SIGTERM drains the worker, whose running stages finish before it exits.
      terminationGracePeriodSeconds: cluster.elasticity === undefined ? 60 : (cluster.elasticity.drainGraceSeconds ?? DEFAULT_DRAIN_GRACE_SECONDS),
      // One worker per node: two would each ask for all of the node's GPUs. A DaemonSet is one per node by nature.
      ...(statefulSet
        ? { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: HOSTNAME_TOPOLOGY, labelSelector: [{ matchLabels: selector }] }] } } }
        : {}),
    }).addContainer(workerContainer(props));
    for (const server of props.comfyUiContainers ?? []) pod.addContainer(server);
    const template = { metadata: { labels: { ...meta.podLabels } }, spec: pod.toSpec() };
    const metadata = { ...meta.of(this.name), labels: { ...meta.podLabels } };

    if (statefulSet) {
      this.headlessService = new ServiceV1(scope, "WorkerService", {
        metadata: meta.of(`${meta.name}-workers`),
        // Headless: it only names the pods (`<pod>.<service>`); workers serve nothing.
        spec: { clusterIp: "None", selector },
      });
      this.workload = new StatefulSetV1(scope, "Workers", {
        metadata,
        spec: {
          replicas: String(cluster.workerReplicas),
          serviceName: this.headlessService.metadata.name,
          // Workers do not depend on each other: start and replace them all at once, not in ordinal order.
          podManagementPolicy: "Parallel",
          updateStrategy: [{ type: "RollingUpdate" }],
          selector: { matchLabels: selector },
          template: template as unknown as StatefulSetTemplate,
        },
        waitForRollout: false,
        // Elastic: the control plane's scaler (or KEDA) owns the replica count from the first apply on;
        // Terraform sets it once and never puts it back.
        ...(cluster.elasticity !== undefined && { lifecycle: { ignoreChanges: ["spec[0].replicas"] } }),
      });
    } else {
      this.headlessService = undefined;
      this.workload = new DaemonSetV1(scope, "Workers", {
        metadata,
        spec: {
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "1" } },
          selector: { matchLabels: selector },
          template: template as unknown as DaemonSetTemplate,
        },
        waitForRollout: false,
      });
    }
    // A drain takes one GPU node at a time: its stages end interrupted and are placed again on the others.
    this.disruptionBudget = new PodDisruptionBudgetV1(scope, "WorkersDisruptionBudget", {
      metadata: meta.of(this.name),
      spec: { maxUnavailable: "1", selector: { matchLabels: selector } },
    });
  }
}

// The provider types each workload's pod template separately; the shapes are the same.
type StatefulSetTemplate = ConstructorParameters<typeof StatefulSetV1>[2]["spec"]["template"];
type DaemonSetTemplate = ConstructorParameters<typeof DaemonSetV1>[2]["spec"]["template"];

/**
 * `gpufabric worker`: all of the node's GPUs, the config, its token (the Secret holds every worker's,
 * keyed by pod name), the CA certificate alone, the shared volume, memory-backed scratch for stage
 * workspaces and a node-local model cache. Stages run here, each in a bubblewrap sandbox that shows it
 * none of these files but its inputs and the cache.
 */
export function workerContainer(props: WorkersProps): Container {
  const r = props.resources ?? {};
  const { config, workerKind } = props.cluster;
  const count = props.gpus ?? props.pool.gpusPerNode;
  const gpus = count > 0 ? { [props.pool.gpuResourceName]: String(count) } : {};
  // StatefulSet pods have stable names, the Secret's keys; a DaemonSet's are random, so its workers go by node name.
  const tokenKey = workerKind === "statefulset" ? "$(POD_NAME)" : "$(GPUFABRIC_NODE_NAME)";
  return new Container({
    name: "worker",
    image: props.image,
    uid: AGENT_UID,
    args: [
      "worker",
      "--config",
      `${AGENT_PATHS.config}/${CONFIG_MAP_KEY}`,
      "--control-plane",
      `https://${props.serviceName}.${props.meta.namespace}.svc:${props.servicePort}`,
      "--token-file",
      `${WORKER_TOKEN_DIR}/${tokenKey}`,
      "--node",
      "$(GPUFABRIC_NODE_NAME)",
      "--ca-file",
      `${AGENT_PATHS.tls}/ca.crt`,
    ],
    env: {
      GPUFABRIC_SCRATCH_DIR: `${AGENT_PATHS.scratch}/gpufabric-scratch`,
      NODE_ENV: "production",
      POD_NAME: { valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      GPUFABRIC_NODE_NAME: { valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    },
    resources: {
      requests: { cpu: r.cpuRequest ?? "2", memory: r.memoryRequest ?? "8Gi", ...gpus },
      limits: { cpu: r.cpuLimit ?? "8", memory: r.memoryLimit ?? "32Gi", ...gpus },
    },
  })
    .mount(AGENT_PATHS.config, props.volumes.config, { readOnly: true })
    .mount(WORKER_TOKEN_DIR, props.volumes.workerTokens)
    .mount(AGENT_PATHS.tls, props.volumes.caCertificate)
    .mount(config.sharedDir, props.volumes.shared)
    .mount(AGENT_PATHS.scratch, props.volumes.scratch)
    .mount(`${props.tierMountPath}/models`, props.volumes.modelCache);
}
