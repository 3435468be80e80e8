import { ConfigMapV1 } from "@cdktf/provider-kubernetes/lib/config-map-v1/index.js";
import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { Lazy } from "cdktf";
import { Construct } from "constructs";
import { CONFIG_MAP_KEY } from "../runtime/config/index.ts";
import type { PlatformConfig, SchedulerSettings, TracingConfig } from "../runtime/config/schema.ts";
import { agentContainer } from "./agent/agent-container.ts";
import { comfyUiConfig, comfyUiContainers, comfyUiStartWithinS, type ComfyUiProps } from "./agent/comfyui.ts";
import { AgentMetadata, type AgentRole } from "./agent/metadata.ts";
import { AgentNetwork, uniqueSegments } from "./agent/network.ts";
import { AGENT_UID, DEFAULT_AGENT_IMAGE } from "./agent/paths.ts";
import { agentPlatformConfig, type OidcSettings } from "./agent/platform-config.ts";
import { PodSpec } from "./agent/pod-spec.ts";
import { AgentRbac } from "./agent/rbac.ts";
import { runnerContainer } from "./agent/runner-container.ts";
import { validateProps } from "./agent/validate.ts";
import { Volume } from "./agent/volume.ts";
import { AgentVolumes, type AgentSecretNames } from "./agent/volumes.ts";
import { ControlPlane } from "./cluster/control-plane.ts";
import { ClusterNetwork } from "./cluster/network.ts";
import { resolveCluster, type ClusterProps, type ClusterSecretNames, type ResolvedCluster } from "./cluster/props.ts";
import { ClusterVolumes } from "./cluster/volumes.ts";
import { Workers } from "./cluster/workers.ts";
import { WorkerScaleRbac } from "./cluster/elasticity.ts";
import type { GpuPool } from "./gpu-pool.ts";
import type { NetworkSegment } from "./network-segment.ts";
import type { StorageTier } from "./storage-tier.ts";
import type { Tenant } from "./tenant.ts";
import { checkedProps } from "./validation.ts";
import type { Workflow } from "./workflow.ts";

export { AGENT_PATHS, DEFAULT_AGENT_IMAGE } from "./agent/paths.ts";
export type { OidcSettings } from "./agent/platform-config.ts";
export type { ComfyUiModelsVolumeProps, ComfyUiProps, ComfyUiServerProps } from "./agent/comfyui.ts";
export type { ClusterDatabaseProps, ClusterProps, ClusterSecretNames, ClusterWorkerProps } from "./cluster/props.ts";
export type { ClusterElasticityProps } from "./cluster/elasticity.ts";

/** The workers' role: their own app name, so that nothing takes them for the agent (they hold none of its Secrets). */
const WORKER_ROLE: AgentRole = { app: "gpufabric-worker", component: "worker" };

export interface AgentResources {
  /** @default "1" */
  readonly cpuRequest?: string;
  /** @default "4" */
  readonly cpuLimit?: string;
  /** @default "2Gi" */
  readonly memoryRequest?: string;
  /** @default "8Gi" */
  readonly memoryLimit?: string;
}

export interface WorkflowDeploymentProps {
  /**
   * Name of the agent and prefix of every object it owns; a DNS-1123 label.
   * @default the construct id, lower-cased
   */
  readonly name?: string;
  /** GPU pool whose nodes run the agent and its stages. */
  readonly pool: GpuPool;
  /** Storage tier for models, artifacts and the agent's state. */
  readonly tier: StorageTier;
  /** Network segment (namespace) the agent runs in. */
  readonly segment: NetworkSegment;
  /** Tenants the agent serves. At least one. */
  readonly tenants: readonly Tenant[];
  /** Workflows runs can refer to by name. */
  readonly workflows: readonly Workflow[];
  /**
   * Segments whose pods may call the agent's API.
   * @default the deployment's own segment and every tenant's segment
   */
  readonly allowedSegments?: readonly NetworkSegment[];
  /** @default DEFAULT_AGENT_IMAGE */
  readonly image?: string;
  /**
   * GPUs the agent pod requests; it schedules stages onto exactly these. Not with `cluster`, whose
   * workers each request all of their node's GPUs.
   * @default the pool's GPUs per node
   */
  readonly gpus?: number;
  /** CPU and memory of the agent's container (API, scheduler, sealing). @default see AgentResources */
  readonly resources?: AgentResources;
  /**
   * How stages are kept apart inside the runner's container. `bubblewrap`: each stage in namespaces of
   * its own (the pod must be allowed to create user namespaces; the agent refuses to start otherwise).
   * `container`: the runner's container alone, which holds no Secret, shared by the stages.
   * @default "bubblewrap"
   */
  readonly stageSandbox?: "bubblewrap" | "container";
  /**
   * CPU and memory of the runner's container, where stages run (it also gets the GPUs).
   * @default requests 2 CPUs and 8Gi, limits 8 CPUs and 32Gi
   */
  readonly stageResources?: AgentResources;
  /** Size of the agent's state volume (store, workspaces). @default "20Gi" */
  readonly stateSize?: string;
  /** Size of the audit checkpoint sink volume. @default "5Gi" */
  readonly auditSinkSize?: string;
  /** @default SCHEDULER_DEFAULTS of runtime/config: headroom 1024 MiB, preemption at stage boundaries, aging 300 s */
  readonly scheduler?: Partial<SchedulerSettings>;
  /** OIDC/JWT authentication in addition to per-tenant API tokens. @default tokens only */
  readonly oidc?: OidcSettings;
  /** Audit checkpoints: every N entries and at least every M seconds. @default 1000 entries, 60 s */
  readonly auditCheckpoint?: { readonly everyEntries?: number; readonly intervalSeconds?: number };
  /**
   * Mutual TLS: the name of a Secret (in the segment's namespace) holding `ca.crt`; callers must then
   * present a client certificate signed by it on every route but the probes, in addition to their token.
   * @default no client certificate required
   */
  readonly clientCaSecretName?: string;
  /**
   * Minimum agent pods kept through voluntary disruptions (node drains).
   * @default 1; with `cluster`, the larger of 1 and the control-plane replicas minus one
   */
  readonly minAvailable?: number;
  /**
   * Cluster mode: instead of one agent, control planes (the agent with a PostgreSQL store, no GPUs) and
   * a worker on every GPU node of the pool, holding all of that node's GPUs. See README, "Deploying
   * cluster mode", for the Secrets to create.
   * @default one agent on one node, with its embedded store
   */
  readonly cluster?: ClusterProps;
  /**
   * ComfyUI workers: the stages of ComfyUI prompts run on real ComfyUI servers, one pinned to each GPU,
   * which the deployment runs beside the runner or every worker (`image`), the agent or worker starts
   * (`command`), or which run already (`servers`). See README, "Deploying ComfyUI workers".
   * @default none: ComfyUI stages are simulated
   */
  readonly comfyui?: ComfyUiProps;
  /**
   * Traces of runs, exported over OTLP/HTTP: the platform config's `observability.tracing` (endpoint,
   * headers, serviceName, sampleRatio). The agent's egress to the collector is the segment's to allow.
   * @default tracing off
   */
  readonly tracing?: Partial<TracingConfig>;
}

/**
 * Deploys the gpufabric agent for a set of workflows: binds them to a GPU pool, a storage tier, a network
 * segment and tenants, and writes the platform config the agent validates on start.
 *
 * Secure by default: non-root, read-only root filesystem, no privilege escalation, all capabilities dropped,
 * RuntimeDefault seccomp, no service-account token, default-deny network with only the allowed segments
 * admitted, secrets referenced by name and mounted read-only (never placed in the config), and stages run
 * in a runner container that mounts no Secret.
 *
 * Composed from the parts in ./agent (identity, volumes, containers, pod spec, network, platform config),
 * which add their objects to this construct itself: Terraform addresses follow construct paths, and a part wrapped
 * in a construct of its own would move them (and make Terraform replace the objects).
 */
export class WorkflowDeployment extends Construct {
  readonly name: string;
  readonly namespace: string;
  readonly pool: GpuPool;
  readonly tier: StorageTier;
  readonly segment: NetworkSegment;
  readonly tenants: readonly Tenant[];
  readonly workflows: readonly Workflow[];
  /** Names of the Secrets the agent needs; create them before deploying (see README). */
  readonly secretNames: AgentSecretNames;
  /** Name of the ConfigMap holding the platform config under key `platform.json`. */
  readonly configMapName: string;
  readonly serviceName: string;
  /** The agent's Deployment: with `cluster`, the control planes'. */
  readonly agent: DeploymentV1;
  /** With `cluster`: the control planes, the workers and the Secrets they add. */
  readonly controlPlane: ControlPlane | undefined;
  readonly workers: Workers | undefined;
  readonly clusterSecretNames: ClusterSecretNames | undefined;
  private readonly props: WorkflowDeploymentProps;
  private readonly allowedSegments: readonly NetworkSegment[];
  private readonly cluster: ResolvedCluster | undefined;
  /** With `comfyui.image`: how many of the pod's GPUs hold a ComfyUI server container; 0 otherwise. */
  private readonly comfyUiGpus: number;

  constructor(scope: Construct, id: string, props: WorkflowDeploymentProps) {
    super(scope, id);
    this.props = props;
    this.name = props.name ?? id.toLowerCase();
    this.pool = props.pool;
    this.tier = props.tier;
    this.segment = props.segment;
    this.namespace = props.segment.namespace;
    this.tenants = props.tenants;
    this.workflows = props.workflows;
    const gpus = props.gpus ?? props.pool.gpusPerNode;
    this.allowedSegments = uniqueSegments([props.segment, ...(props.allowedSegments ?? props.tenants.map((t) => t.segment))]);
    checkedProps(this, () => validateProps(this.name, props, gpus));
    this.cluster = props.cluster ? resolveCluster(props.cluster, props.pool, props.tier, { namespace: props.segment.namespace, name: `${this.name}-worker` }) : undefined;
    const podGpus = this.cluster ? props.pool.gpusPerNode : gpus;
    this.comfyUiGpus = props.comfyui?.image !== undefined ? (props.comfyui.gpus ?? podGpus) : 0;

    this.secretNames = {
      keyring: `${this.name}-keyring`,
      tokens: `${this.name}-tokens`,
      auditSigning: `${this.name}-audit-signing`,
      tls: `${this.name}-tls`,
    };
    this.configMapName = `${this.name}-config`;
    this.serviceName = this.name;
    const meta = new AgentMetadata(this, this.name, this.namespace);
    const image = props.image ?? DEFAULT_AGENT_IMAGE;

    const rbac = new AgentRbac(this, { meta, configMapName: this.configMapName });
    new ConfigMapV1(this, "PlatformConfig", {
      metadata: meta.of(this.configMapName, "platform-config"),
      // Lazy: runtime rules come from compliance constructs that may be declared after this one.
      data: { [CONFIG_MAP_KEY]: Lazy.stringValue({ produce: () => JSON.stringify(this.platformConfig(), null, 2) }) },
    });
    if (this.cluster) {
      this.clusterSecretNames = {
        database: this.cluster.database.secretName,
        workerTokens: `${this.name}-worker-tokens`,
        workerTokenHashes: `${this.name}-worker-token-hashes`,
      };
      const built = this.buildCluster(meta, image, rbac, this.cluster, this.clusterSecretNames);
      this.controlPlane = built.controlPlane;
      this.workers = built.workers;
      this.agent = built.controlPlane.deployment;
    } else {
      this.clusterSecretNames = undefined;
      this.controlPlane = undefined;
      this.workers = undefined;
      this.agent = this.buildSingleAgent(meta, image, rbac, gpus);
    }
  }

  /** One agent on one node: API, scheduler and store in one pod, stages in its runner container. */
  private buildSingleAgent(meta: AgentMetadata, image: string, rbac: AgentRbac, gpus: number): DeploymentV1 {
    const props = this.props;
    const volumes = new AgentVolumes(this, {
      meta,
      configMapName: this.configMapName,
      secretNames: this.secretNames,
      clientCaSecretName: props.clientCaSecretName,
      tier: props.tier,
      segment: props.segment,
      stateSize: props.stateSize,
      auditSinkSize: props.auditSinkSize,
    });

    const pod = new PodSpec({
      serviceAccountName: rbac.serviceAccount.metadata.name,
      uid: AGENT_UID,
      priorityClassName: props.pool.priorityClassName("interactive"),
      nodeSelector: props.pool.nodeSelector,
      tolerations: props.pool.tolerations,
      terminationGracePeriodSeconds: 60,
    })
      .addContainer(agentContainer({ image, resources: props.resources, volumes, tierMountPath: props.tier.mountPath, ...(this.comfyUiGpus > 0 && { startWithinS: comfyUiStartWithinS(props.comfyui) }) }))
      // Stages run here, never in the agent's container.
      .addContainer(
        runnerContainer({ image, resources: props.stageResources, gpuResource: props.pool.gpuResourceName, gpus: gpus - this.comfyUiGpus, volumes, tierMountPath: props.tier.mountPath }),
      );
    // Beside the runner, on the pod's other GPUs; by default they read the models the runner's stages see.
    for (const server of this.comfyUiServers(volumes.models)) pod.addContainer(server);

    const agent = new DeploymentV1(this, "Agent", {
      metadata: { ...meta.of(this.name), labels: { ...meta.podLabels } },
      spec: {
        replicas: "1",
        // One writer owns the state volume: never run old and new side by side.
        strategy: { type: "Recreate" },
        selector: { matchLabels: { ...meta.selector } },
        template: { metadata: { labels: { ...meta.podLabels } }, spec: pod.toSpec() },
      },
      waitForRollout: false,
    });

    new AgentNetwork(this, { meta, serviceName: this.serviceName, allowedSegments: this.allowedSegments });
    new PodDisruptionBudgetV1(this, "DisruptionBudget", {
      metadata: meta.of(this.name),
      spec: { minAvailable: String(props.minAvailable ?? 1), selector: { matchLabels: { ...meta.selector } } },
    });
    return agent;
  }

  /**
   * Control planes (no GPUs) and a worker on every GPU node; the API Service and its policies are the
   * single agent's, selecting the control planes, which carry the agent's labels.
   */
  private buildCluster(meta: AgentMetadata, image: string, rbac: AgentRbac, cluster: ResolvedCluster, clusterSecretNames: ClusterSecretNames): { controlPlane: ControlPlane; workers: Workers } {
    const props = this.props;
    const volumes = new ClusterVolumes(this, {
      meta,
      configMapName: this.configMapName,
      secretNames: this.secretNames,
      clusterSecretNames,
      clientCaSecretName: props.clientCaSecretName,
      cluster,
      auditSinkSize: props.auditSinkSize,
      stateSize: props.stateSize,
    });
    const controlPlane = new ControlPlane(this, {
      meta,
      image,
      serviceAccountName: rbac.serviceAccount.metadata.name,
      volumes,
      cluster,
      clusterSecretNames,
      resources: props.resources,
      minAvailable: props.minAvailable,
    });
    const network = new AgentNetwork(this, { meta, serviceName: this.serviceName, allowedSegments: this.allowedSegments });
    const workerMeta = new AgentMetadata(this, this.name, this.namespace, WORKER_ROLE);
    const workers = new Workers(this, {
      meta: workerMeta,
      image,
      pool: props.pool,
      volumes,
      cluster,
      serviceName: this.serviceName,
      servicePort: network.servicePort,
      tierMountPath: props.tier.mountPath,
      resources: props.stageResources,
      gpus: props.pool.gpusPerNode - this.comfyUiGpus,
      // By default they read the worker's node-local model cache, the models its stages see.
      comfyUiContainers: this.comfyUiServers(volumes.modelCache),
    });
    new ClusterNetwork(this, { controlPlane: meta, workers: workerMeta, cluster });
    if (cluster.config.elasticity.enabled && cluster.config.elasticity.provider.type === "kubernetes") {
      new WorkerScaleRbac(this, { meta, serviceAccountName: rbac.serviceAccount.metadata.name, workloadName: workers.name });
    }
    return { controlPlane, workers };
  }

  /** The ComfyUI server containers of `comfyui.image`, reading `stageModels` unless a claim is named. */
  private comfyUiServers(stageModels: Volume): ReturnType<typeof comfyUiContainers> {
    const comfyui = this.props.comfyui;
    if (comfyui?.image === undefined) return [];
    const claim = comfyui.modelsVolume?.claimName;
    return comfyUiContainers({
      comfyui: { ...comfyui, image: comfyui.image },
      servedGpus: this.comfyUiGpus,
      gpuResource: this.pool.gpuResourceName,
      models: comfyui.modelsVolume === undefined ? undefined : claim !== undefined ? Volume.fromPersistentVolumeClaim("comfyui-models", claim) : stageModels,
    });
  }

  /** The claim ComfyUI servers read models from, for the config; none for a cluster's node-local caches. */
  private comfyUiModelsClaim(): string | undefined {
    const models = this.props.comfyui?.modelsVolume;
    if (models === undefined) return undefined;
    if (models.claimName !== undefined) return models.claimName;
    return this.cluster ? undefined : this.tier.claimsFor(this.segment).models;
  }

  /** The platform config this agent runs on, validated against the runtime's schema. */
  platformConfig(): PlatformConfig {
    const p = this.props;
    return agentPlatformConfig({
      scope: this,
      name: this.name,
      namespace: this.namespace,
      image: p.image ?? DEFAULT_AGENT_IMAGE,
      pool: this.pool,
      tier: this.tier,
      segment: this.segment,
      allowedSegments: this.allowedSegments,
      tenants: this.tenants,
      workflows: this.workflows,
      secretNames: this.secretNames,
      scheduler: p.scheduler,
      oidc: p.oidc,
      auditCheckpoint: p.auditCheckpoint,
      clientCaSecretName: p.clientCaSecretName,
      stageSandbox: p.stageSandbox,
      cluster: this.cluster?.config,
      comfyui: p.comfyui ? comfyUiConfig(p.comfyui, this.comfyUiGpus, this.comfyUiModelsClaim()) : undefined,
      ...(p.tracing && { observability: { tracing: p.tracing } }),
    });
  }
}
