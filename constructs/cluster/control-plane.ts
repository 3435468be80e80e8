/**
 * The control planes of a cluster: `gpufabric agent` with the database URL from its Secret. Every
 * replica serves the API; one leader (a lease in PostgreSQL) schedules. No GPUs: stages run on workers.
 * Replicas share only PostgreSQL and the ReadWriteMany volume, so they roll one at a time with a new
 * one up first (never Recreate), spread over nodes, behind a PodDisruptionBudget.
 */
import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import type { Construct } from "constructs";
import { agentLikeContainer, type ContainerResources } from "../agent/agent-container.ts";
import { Container } from "../agent/container.ts";
import type { AgentMetadata } from "../agent/metadata.ts";
import { AGENT_PATHS, AGENT_PORT, AGENT_UID } from "../agent/paths.ts";
import { PodSpec } from "../agent/pod-spec.ts";
import type { ClusterSecretNames, ResolvedCluster } from "./props.ts";
import type { ClusterVolumes } from "./volumes.ts";

export const HOSTNAME_TOPOLOGY = "kubernetes.io/hostname";
const ZONE_TOPOLOGY = "topology.kubernetes.io/zone";

export interface ControlPlaneProps {
  /** The agent's metadata: policies and the Service find control planes by the agent's labels. */
  readonly meta: AgentMetadata;
  readonly image: string;
  readonly serviceAccountName: string;
  readonly volumes: ClusterVolumes;
  readonly cluster: ResolvedCluster;
  readonly clusterSecretNames: ClusterSecretNames;
  /** @default requests 1 CPU and 2Gi, limits 4 CPUs and 8Gi */
  readonly resources?: ContainerResources;
  /** @default the larger of 1 and replicas - 1 */
  readonly minAvailable?: number;
}

export class ControlPlane {
  readonly deployment: DeploymentV1;
  readonly disruptionBudget: PodDisruptionBudgetV1;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: ControlPlaneProps) {
    const { meta, cluster } = props;
    const replicas = cluster.config.controlPlaneReplicas;
    const selector = { ...meta.selector };
    const pod = new PodSpec({
      serviceAccountName: props.serviceAccountName,
      uid: AGENT_UID,
      // The scaler calls the API server with the service account's token; its Role allows only the workers' scale.
      kubernetesApiAccess: cluster.config.elasticity.enabled && cluster.config.elasticity.provider.type === "kubernetes",
      terminationGracePeriodSeconds: 60,
      // A node loss takes at most one replica: spread hard over nodes (a one-node cluster still runs them all),
      // softly over zones.
      topologySpreadConstraints: [
        { maxSkew: 1, topologyKey: HOSTNAME_TOPOLOGY, whenUnsatisfiable: "DoNotSchedule", labelSelector: [{ matchLabels: selector }] },
        { maxSkew: 1, topologyKey: ZONE_TOPOLOGY, whenUnsatisfiable: "ScheduleAnyway", labelSelector: [{ matchLabels: selector }] },
      ],
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 100, podAffinityTerm: { topologyKey: HOSTNAME_TOPOLOGY, labelSelector: [{ matchLabels: selector }] } },
          ],
        },
      },
    }).addContainer(controlPlaneContainer(props));

    this.deployment = new DeploymentV1(scope, "ControlPlane", {
      metadata: { ...meta.of(`${meta.name}-control-plane`), labels: { ...meta.podLabels } },
      spec: {
        replicas: String(replicas),
        // A new replica is ready before an old one goes: the API stays up and a leader is always there to take over.
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "0", maxSurge: "1" } },
        selector: { matchLabels: selector },
        template: { metadata: { labels: { ...meta.podLabels } }, spec: pod.toSpec() },
      },
      waitForRollout: false,
    });
    this.disruptionBudget = new PodDisruptionBudgetV1(scope, "DisruptionBudget", {
      metadata: meta.of(`${meta.name}-control-plane`),
      spec: { minAvailable: String(props.minAvailable ?? Math.max(1, replicas - 1)), selector: { matchLabels: selector } },
    });
  }
}

/** `gpufabric agent` as a control plane: the agent's mounts, the worker token hashes and the shared volume; no GPUs, no stages. */
export function controlPlaneContainer(props: ControlPlaneProps): Container {
  const v = props.volumes;
  const { config, database } = props.cluster;
  return agentLikeContainer({
    image: props.image,
    ...(props.resources && { resources: props.resources }),
    volumes: v,
    env: {
      // The URL holds the password: straight from its Secret into this container, never into the config.
      GPUFABRIC_DATABASE_URL: { valueFrom: { secretKeyRef: { name: props.clusterSecretNames.database, key: database.key, optional: false } } },
      POD_IP: { valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
      // The leader's own address: workers follow the leader there, not through the Service.
      GPUFABRIC_ADVERTISE_URL: `https://$(POD_IP):${AGENT_PORT}`,
      GPUFABRIC_NODE_NAME: { valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    },
  })
    .mount(config.workerTokens.mountPath, v.workerTokenHashes)
    .mount(AGENT_PATHS.data, v.data)
    .mount(AGENT_PATHS.auditSink, v.auditSink)
    .mount(config.sharedDir, v.shared)
    .mount(AGENT_PATHS.scratch, v.scratch);
}
