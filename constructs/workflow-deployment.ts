import { dirname } from "node:path";
import { ConfigMapV1 } from "@cdktf/provider-kubernetes/lib/config-map-v1/index.js";
import { DeploymentV1 } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { NetworkPolicyV1 } from "@cdktf/provider-kubernetes/lib/network-policy-v1/index.js";
import { PersistentVolumeClaimV1 } from "@cdktf/provider-kubernetes/lib/persistent-volume-claim-v1/index.js";
import { PodDisruptionBudgetV1 } from "@cdktf/provider-kubernetes/lib/pod-disruption-budget-v1/index.js";
import { RoleBindingV1 } from "@cdktf/provider-kubernetes/lib/role-binding-v1/index.js";
import { RoleV1 } from "@cdktf/provider-kubernetes/lib/role-v1/index.js";
import { ServiceAccountV1 } from "@cdktf/provider-kubernetes/lib/service-account-v1/index.js";
import { ServiceV1 } from "@cdktf/provider-kubernetes/lib/service-v1/index.js";
import { Lazy } from "cdktf";
import { Construct } from "constructs";
import { readFileSync } from "node:fs";
import { CONFIG_MAP_KEY, parsePlatformConfig } from "../runtime/config/index.ts";
import {
  type PlatformConfig,
  type SchedulerSettings,
  type SecurityConfig,
  type SegmentConfig,
} from "../runtime/config/schema.ts";
import { tryParseQuantityMiB } from "../runtime/graph/index.ts";
import { FabricStack } from "./fabric-stack.ts";
import type { GpuPool } from "./gpu-pool.ts";
import type { NetworkSegment } from "./network-segment.ts";
import { collectRuntimeRules } from "./runtime-rules.ts";
import type { StorageTier } from "./storage-tier.ts";
import type { Tenant } from "./tenant.ts";
import { checkedProps, PropIssues } from "./validation.ts";
import type { Workflow } from "./workflow.ts";

/** The agent image WorkflowDeployment runs unless told otherwise: the one built from this package's Dockerfile. */
export const DEFAULT_AGENT_IMAGE = `gpufabric/agent:${packageVersion()}`;

/** Where the agent finds what WorkflowDeployment mounts into its container. */
export const AGENT_PATHS = {
  config: "/etc/gpufabric",
  data: "/var/lib/gpufabric",
  keyring: "/var/run/secrets/gpufabric/keyring",
  tokens: "/var/run/secrets/gpufabric/tokens",
  auditSigning: "/var/run/secrets/gpufabric/audit-signing",
  tls: "/var/run/secrets/gpufabric/tls",
  clientCa: "/var/run/secrets/gpufabric/client-ca",
  auditSink: "/var/lib/gpufabric-audit",
  scratch: "/tmp",
  /** The runner's socket, in a volume only the agent's and the runner's containers mount. */
  runnerSocket: "/var/run/gpufabric-runner/runner.sock",
} as const;

const AGENT_PORT = 8443;

interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}
const AGENT_UID = "10001";

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

export interface OidcSettings {
  readonly issuer: string;
  readonly audience: string;
  /** @default the issuer's `/.well-known/jwks.json` is not assumed: give it, or keys must come inline later */
  readonly jwksUri?: string;
  /** @default ["RS256", "ES256"] */
  readonly algorithms?: readonly string[];
  /** @default 3600 */
  readonly maxTokenAgeSeconds?: number;
  /** @default ["sub"] */
  readonly requiredClaims?: readonly string[];
  /** Claim that names the caller's tenant. @default "gpufabric/tenant" */
  readonly tenantClaim?: string;
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
   * GPUs the agent pod requests; it schedules stages onto exactly these.
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
  /** @default headroom 1024 MiB, preemption at stage boundaries, aging 300 s */
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
  /** Minimum agent pods kept through voluntary disruptions (node drains). @default 1 */
  readonly minAvailable?: number;
}

/**
 * Deploys the gpufabric agent for a set of workflows: binds them to a GPU pool, a storage tier, a network
 * segment and tenants, and writes the platform config the agent validates on start.
 *
 * Secure by default: non-root, read-only root filesystem, no privilege escalation, all capabilities dropped,
 * RuntimeDefault seccomp, no service-account token, default-deny network with only the allowed segments
 * admitted, secrets referenced by name and mounted read-only (never placed in the config).
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
  readonly secretNames: { readonly keyring: string; readonly tokens: string; readonly auditSigning: string; readonly tls: string };
  /** Name of the ConfigMap holding the platform config under key `platform.json`. */
  readonly configMapName: string;
  readonly serviceName: string;
  readonly agent: DeploymentV1;
  private readonly props: WorkflowDeploymentProps;
  private readonly allowedSegments: readonly NetworkSegment[];
  private readonly gpus: number;

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
    this.gpus = props.gpus ?? props.pool.gpusPerNode;
    this.allowedSegments = uniqueSegments([props.segment, ...(props.allowedSegments ?? props.tenants.map((t) => t.segment))]);
    checkedProps(this, () => validate(this.name, props, this.gpus));

    this.secretNames = {
      keyring: `${this.name}-keyring`,
      tokens: `${this.name}-tokens`,
      auditSigning: `${this.name}-audit-signing`,
      tls: `${this.name}-tls`,
    };
    this.configMapName = `${this.name}-config`;
    this.serviceName = this.name;

    const stack = FabricStack.of(this);
    const labels = stack.labelsFor("agent", this.name);
    const selector = {
      "app.kubernetes.io/name": "gpufabric-agent",
      "app.kubernetes.io/instance": this.name,
      "app.kubernetes.io/component": "agent",
    };
    const agentLabels = { ...labels, ...selector };
    const meta = (name: string, component = "agent"): ObjectMeta => ({
      name,
      namespace: this.namespace,
      labels: { ...stack.labelsFor(component, this.name), "app.kubernetes.io/name": "gpufabric-agent" },
    });

    const serviceAccount = new ServiceAccountV1(this, "ServiceAccount", {
      metadata: meta(this.name),
      automountServiceAccountToken: false,
    });

    // Least privilege: read its own config, record events, hold its own leader lease. Nothing cluster-wide.
    const role = new RoleV1(this, "Role", {
      metadata: meta(this.name),
      rule: [
        { apiGroups: [""], resources: ["configmaps"], resourceNames: [this.configMapName], verbs: ["get", "watch"] },
        { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [this.name], verbs: ["get", "update"] },
      ],
    });
    new RoleBindingV1(this, "RoleBinding", {
      metadata: meta(this.name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
      subject: [{ kind: "ServiceAccount", name: serviceAccount.metadata.name, namespace: this.namespace }],
    });

    new ConfigMapV1(this, "PlatformConfig", {
      metadata: meta(this.configMapName, "platform-config"),
      // Lazy: runtime rules come from compliance constructs that may be declared after this one.
      data: { [CONFIG_MAP_KEY]: Lazy.stringValue({ produce: () => JSON.stringify(this.platformConfig(), null, 2) }) },
    });

    const claims = props.tier.claimsFor(props.segment);
    const stateClaim = new PersistentVolumeClaimV1(this, "StateVolume", {
      metadata: meta(`${this.name}-state`, "state"),
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: props.tier.storageClassName,
        resources: { requests: { storage: props.stateSize ?? "20Gi" } },
      },
      // WaitForFirstConsumer classes bind only once the agent pod is scheduled.
      waitUntilBound: false,
    });
    const auditClaim = new PersistentVolumeClaimV1(this, "AuditSinkVolume", {
      metadata: meta(`${this.name}-audit`, "audit-sink"),
      spec: {
        accessModes: ["ReadWriteOnce"],
        storageClassName: props.tier.storageClassName,
        resources: { requests: { storage: props.auditSinkSize ?? "5Gi" } },
      },
      waitUntilBound: false,
    });

    const resources = props.resources ?? {};
    const stageResources = props.stageResources ?? {};
    const gpuResource = props.pool.gpuResourceName;
    // 0440: with the pod's fsGroup the kubelet makes Secret files root-owned and group-readable anyway
    // (0400 would be widened); the non-root agent reads its keys through that group, nobody else can.
    const secretVolume = (name: string, secretName: string) => ({ name, secret: { secretName, defaultMode: "0440", optional: false } });
    const probe = (path: string, period: number) => ({
      httpGet: { path, port: String(AGENT_PORT), scheme: "HTTPS" },
      periodSeconds: period,
      timeoutSeconds: 5,
      failureThreshold: 3,
    });

    this.agent = new DeploymentV1(this, "Agent", {
      metadata: { ...meta(this.name), labels: agentLabels },
      spec: {
        replicas: "1",
        // One writer owns the state volume: never run old and new side by side.
        strategy: { type: "Recreate" },
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: agentLabels },
          spec: {
            serviceAccountName: serviceAccount.metadata.name,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            priorityClassName: props.pool.priorityClassName("interactive"),
            nodeSelector: props.pool.nodeSelector,
            toleration: props.pool.tolerations.map((t) => ({ ...t })),
            terminationGracePeriodSeconds: 60,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: AGENT_UID,
              runAsGroup: AGENT_UID,
              fsGroup: AGENT_UID,
              seccompProfile: { type: "RuntimeDefault" },
            },
            container: [
              {
                name: "agent",
                image: props.image ?? DEFAULT_AGENT_IMAGE,
                imagePullPolicy: "IfNotPresent",
                args: ["agent", "--config", `${AGENT_PATHS.config}/${CONFIG_MAP_KEY}`],
                port: [{ name: "https", containerPort: AGENT_PORT, protocol: "TCP" }],
                env: [
                  { name: "GPUFABRIC_DATA_DIR", value: AGENT_PATHS.data },
                  // Stage workspaces (plaintext until sealed) on the memory-backed scratch volume, not /dev/shm's 64 MiB.
                  { name: "GPUFABRIC_SCRATCH_DIR", value: `${AGENT_PATHS.scratch}/gpufabric-scratch` },
                  { name: "NODE_ENV", value: "production" },
                ],
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: AGENT_UID,
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                  seccompProfile: { type: "RuntimeDefault" },
                },
                // The GPUs go to the runner's container, where stages run.
                resources: {
                  requests: { cpu: resources.cpuRequest ?? "1", memory: resources.memoryRequest ?? "2Gi" },
                  limits: { cpu: resources.cpuLimit ?? "4", memory: resources.memoryLimit ?? "8Gi" },
                },
                livenessProbe: probe("/healthz", 10),
                readinessProbe: probe("/readyz", 5),
                volumeMount: [
                  { name: "config", mountPath: AGENT_PATHS.config, readOnly: true },
                  { name: "keyring", mountPath: AGENT_PATHS.keyring, readOnly: true },
                  { name: "tokens", mountPath: AGENT_PATHS.tokens, readOnly: true },
                  { name: "audit-signing", mountPath: AGENT_PATHS.auditSigning, readOnly: true },
                  { name: "tls", mountPath: AGENT_PATHS.tls, readOnly: true },
                  ...(props.clientCaSecretName ? [{ name: "client-ca", mountPath: AGENT_PATHS.clientCa, readOnly: true }] : []),
                  { name: "state", mountPath: AGENT_PATHS.data },
                  { name: "audit-sink", mountPath: AGENT_PATHS.auditSink },
                  { name: "models", mountPath: `${props.tier.mountPath}/models` },
                  { name: "artifacts", mountPath: `${props.tier.mountPath}/artifacts` },
                  { name: "scratch", mountPath: AGENT_PATHS.scratch },
                  { name: "runner-socket", mountPath: dirname(AGENT_PATHS.runnerSocket) },
                ],
              },
              // Stages run here, never in the agent's container: this one mounts no Secret, no config, no
              // store and no audit log, only the workspaces, the model cache (read-only) and the socket.
              {
                name: "runner",
                image: props.image ?? DEFAULT_AGENT_IMAGE,
                imagePullPolicy: "IfNotPresent",
                args: ["runner", "--socket", AGENT_PATHS.runnerSocket],
                env: [{ name: "NODE_ENV", value: "production" }],
                securityContext: {
                  runAsNonRoot: true,
                  runAsUser: AGENT_UID,
                  allowPrivilegeEscalation: false,
                  privileged: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                  seccompProfile: { type: "RuntimeDefault" },
                },
                resources: {
                  requests: { cpu: stageResources.cpuRequest ?? "2", memory: stageResources.memoryRequest ?? "8Gi", [gpuResource]: String(this.gpus) },
                  limits: { cpu: stageResources.cpuLimit ?? "8", memory: stageResources.memoryLimit ?? "32Gi", [gpuResource]: String(this.gpus) },
                },
                volumeMount: [
                  { name: "scratch", mountPath: AGENT_PATHS.scratch },
                  { name: "models", mountPath: `${props.tier.mountPath}/models`, readOnly: true },
                  { name: "runner-socket", mountPath: dirname(AGENT_PATHS.runnerSocket) },
                ],
              },
            ],
            volume: [
              { name: "config", configMap: { name: this.configMapName, defaultMode: "0444" } },
              secretVolume("keyring", this.secretNames.keyring),
              secretVolume("tokens", this.secretNames.tokens),
              secretVolume("audit-signing", this.secretNames.auditSigning),
              secretVolume("tls", this.secretNames.tls),
              ...(props.clientCaSecretName ? [secretVolume("client-ca", props.clientCaSecretName)] : []),
              { name: "state", persistentVolumeClaim: { claimName: stateClaim.metadata.name } },
              { name: "audit-sink", persistentVolumeClaim: { claimName: auditClaim.metadata.name } },
              { name: "models", persistentVolumeClaim: { claimName: claims.models } },
              { name: "artifacts", persistentVolumeClaim: { claimName: claims.artifacts } },
              // Stage workspaces live in memory so plaintext never lands on a node's disk.
              { name: "scratch", emptyDir: { medium: "Memory", sizeLimit: "8Gi" } },
              { name: "runner-socket", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
            ],
          },
        },
      },
      waitForRollout: false,
    });

    new ServiceV1(this, "Service", {
      metadata: meta(this.serviceName),
      spec: {
        type: "ClusterIP",
        selector,
        port: [{ name: "https", port: 443, targetPort: String(AGENT_PORT), protocol: "TCP" }],
      },
    });

    this.admitAllowedSegments(selector, meta);

    new PodDisruptionBudgetV1(this, "DisruptionBudget", {
      metadata: meta(this.name),
      spec: { minAvailable: String(props.minAvailable ?? 1), selector: { matchLabels: selector } },
    });
  }

  /**
   * The segment's default-deny blocks everything; admit the allowed segments to the agent's API port, and
   * let their pods (whose egress is default-deny too) reach it.
   */
  private admitAllowedSegments(selector: Record<string, string>, meta: (name: string, component?: string) => ObjectMeta): void {
    const ports = [{ port: String(AGENT_PORT), protocol: "TCP" }];
    new NetworkPolicyV1(this, "ApiIngress", {
      metadata: meta(`${this.name}-api-ingress`, "network-policy"),
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: this.allowedSegments.map((s) => ({
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": s.namespace } },
            })),
            ports,
          },
        ],
      },
    });
    const stack = FabricStack.of(this);
    this.allowedSegments.forEach((s) => {
      new NetworkPolicyV1(this, `ApiEgressFrom-${s.name}`, {
        metadata: {
          name: `allow-egress-to-${this.name}`,
          namespace: s.namespace,
          labels: stack.labelsFor("network-policy", this.name),
        },
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            {
              to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": this.namespace } }, podSelector: { matchLabels: selector } }],
              ports,
            },
          ],
        },
      });
    });
  }

  /** The platform config this agent runs on, validated against the runtime's schema. */
  platformConfig(): PlatformConfig {
    const stack = FabricStack.of(this);
    const tenantNames = new Set(this.tenants.map((t) => t.name));
    const pool = this.props.pool.toConfig();
    const segments: SegmentConfig[] = uniqueSegments([this.segment, ...this.allowedSegments]).map((s) => s.toConfig());
    const config = {
      version: 1,
      platform: { name: stack.platformName, region: stack.region ?? null, zones: [...stack.zones] },
      deployment: {
        name: this.name,
        namespace: this.namespace,
        pool: pool.name,
        tier: this.tier.name,
        segment: this.segment.name,
        // Inside the cluster the API is served over TLS on all interfaces; NetworkPolicies admit callers.
        listen: { host: "0.0.0.0", port: AGENT_PORT },
        dataDir: AGENT_PATHS.data,
        image: this.props.image ?? DEFAULT_AGENT_IMAGE,
      },
      // A shared pool may carry quotas of tenants this agent does not serve: keep only its own.
      pools: [{ ...pool, tenantQuotas: Object.fromEntries(Object.entries(pool.tenantQuotas).filter(([t]) => tenantNames.has(t))) }],
      tiers: [this.tier.toConfig()],
      segments,
      tenants: this.tenants.map((t) => t.toConfig()),
      workflows: this.workflows.map((w) => w.toConfig(this.tenants)),
      scheduler: {
        headroomMiB: this.props.scheduler?.headroomMiB ?? 1024,
        preemption: this.props.scheduler?.preemption ?? "stage-boundary",
        agingSeconds: this.props.scheduler?.agingSeconds ?? 300,
      },
      security: this.securityConfig(),
      // Stages start in the pod's runner container (no Secret there), which sees the model cache read-only.
      isolation: {
        mode: "runner",
        sandbox: this.props.stageSandbox === "container" ? "none" : "bubblewrap",
        runnerSocket: AGENT_PATHS.runnerSocket,
        modelCacheDir: `${this.tier.mountPath}/models`,
      },
      runtimeRules: collectRuntimeRules(stack),
    };
    return parsePlatformConfig(config, `platform config of WorkflowDeployment '${this.node.path}'`);
  }

  private securityConfig(): SecurityConfig {
    const oidc = this.props.oidc;
    return {
      auth: {
        required: true,
        tokens: { secretName: this.secretNames.tokens, mountPath: AGENT_PATHS.tokens },
        ...(oidc
          ? {
              oidc: {
                issuer: oidc.issuer,
                audience: oidc.audience,
                ...(oidc.jwksUri ? { jwksUri: oidc.jwksUri } : {}),
                algorithms: [...(oidc.algorithms ?? ["RS256", "ES256"])],
                maxTokenAgeSeconds: oidc.maxTokenAgeSeconds ?? 3600,
                requiredClaims: [...(oidc.requiredClaims ?? ["sub"])],
                tenantClaim: oidc.tenantClaim ?? "gpufabric/tenant",
              },
            }
          : {}),
      },
      encryption: {
        atRest: true,
        algorithm: "AES-256-GCM",
        keyring: { secretName: this.secretNames.keyring, mountPath: AGENT_PATHS.keyring },
      },
      audit: {
        signingKey: { secretName: this.secretNames.auditSigning, mountPath: AGENT_PATHS.auditSigning },
        sink: { type: "volume", claimName: `${this.name}-audit`, mountPath: AGENT_PATHS.auditSink },
        checkpointEvery: this.props.auditCheckpoint?.everyEntries ?? 1000,
        checkpointIntervalSeconds: this.props.auditCheckpoint?.intervalSeconds ?? 60,
      },
      tls: {
        enabled: true,
        certificate: { secretName: this.secretNames.tls, mountPath: AGENT_PATHS.tls },
        ...(this.props.clientCaSecretName ? { clientCa: { secretName: this.props.clientCaSecretName, mountPath: AGENT_PATHS.clientCa } } : {}),
      },
    };
  }
}

function uniqueSegments(segments: readonly NetworkSegment[]): NetworkSegment[] {
  const seen = new Set<string>();
  return segments.filter((s) => (seen.has(s.namespace) ? false : (seen.add(s.namespace), true)));
}

function validate(name: string, props: WorkflowDeploymentProps, gpus: number): void {
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
  issues.throwIfAny();
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}
