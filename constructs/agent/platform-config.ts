/**
 * The platform config an agent runs on, as WorkflowDeployment writes it into its ConfigMap: built from
 * the constructs it is bound to, then validated against the runtime's own schema.
 */
import type { IConstruct } from "constructs";
import { parsePlatformConfig } from "../../runtime/config/index.ts";
import { SCHEDULER_DEFAULTS, type ClusterConfig, type ComfyUiConfig, type PlatformConfig, type SchedulerSettings, type SecurityConfig, type SegmentConfig, type TracingConfig } from "../../runtime/config/schema.ts";
import { FabricStack } from "../fabric-stack.ts";
import type { GpuPool } from "../gpu-pool.ts";
import type { NetworkSegment } from "../network-segment.ts";
import { collectRuntimeRules } from "../runtime-rules.ts";
import type { StorageTier } from "../storage-tier.ts";
import type { Tenant } from "../tenant.ts";
import type { Workflow } from "../workflow.ts";
import { uniqueSegments } from "./network.ts";
import { AGENT_PATHS, AGENT_PORT } from "./paths.ts";
import type { AgentSecretNames } from "./volumes.ts";

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

export interface AgentConfigInputs {
  /** The deploying construct: its stack gives the platform and runtime rules, its path names errors. */
  readonly scope: IConstruct;
  readonly name: string;
  readonly namespace: string;
  readonly image: string;
  readonly pool: GpuPool;
  readonly tier: StorageTier;
  readonly segment: NetworkSegment;
  readonly allowedSegments: readonly NetworkSegment[];
  readonly tenants: readonly Tenant[];
  readonly workflows: readonly Workflow[];
  readonly secretNames: AgentSecretNames;
  readonly scheduler?: Partial<SchedulerSettings>;
  readonly oidc?: OidcSettings;
  readonly auditCheckpoint?: { readonly everyEntries?: number; readonly intervalSeconds?: number };
  readonly clientCaSecretName?: string;
  readonly stageSandbox?: "bubblewrap" | "container";
  /** Cluster mode: control planes and workers. @default none: one agent (the config says `cluster: null`) */
  readonly cluster?: ClusterConfig;
  /** ComfyUI workers. @default none: ComfyUI stages are simulated (the config says `comfyui: null`) */
  readonly comfyui?: ComfyUiConfig;
  /** Traces of runs (OpenTelemetry). @default tracing off (the config says `tracing.endpoint: null`) */
  readonly observability?: { readonly tracing?: Partial<TracingConfig> };
}

export function agentPlatformConfig(inputs: AgentConfigInputs): PlatformConfig {
  const stack = FabricStack.of(inputs.scope);
  const tenantNames = new Set(inputs.tenants.map((t) => t.name));
  const pool = inputs.pool.toConfig();
  const segments: SegmentConfig[] = uniqueSegments([inputs.segment, ...inputs.allowedSegments]).map((s) => s.toConfig());
  const config = {
    version: 1,
    platform: { name: stack.platformName, region: stack.region ?? null, zones: [...stack.zones] },
    deployment: {
      name: inputs.name,
      namespace: inputs.namespace,
      pool: pool.name,
      tier: inputs.tier.name,
      segment: inputs.segment.name,
      // Inside the cluster the API is served over TLS on all interfaces; NetworkPolicies admit callers.
      listen: { host: "0.0.0.0", port: AGENT_PORT },
      dataDir: AGENT_PATHS.data,
      image: inputs.image,
    },
    // A shared pool may carry quotas of tenants this agent does not serve: keep only its own.
    pools: [{ ...pool, tenantQuotas: Object.fromEntries(Object.entries(pool.tenantQuotas).filter(([t]) => tenantNames.has(t))) }],
    tiers: [inputs.tier.toConfig()],
    segments,
    tenants: inputs.tenants.map((t) => t.toConfig()),
    workflows: inputs.workflows.map((w) => w.toConfig(inputs.tenants)),
    // The runtime's own defaults, so a deployment without settings schedules exactly as `gpufabric agent` does.
    scheduler: {
      headroomMiB: inputs.scheduler?.headroomMiB ?? SCHEDULER_DEFAULTS.headroomMiB,
      preemption: inputs.scheduler?.preemption ?? SCHEDULER_DEFAULTS.preemption,
      agingSeconds: inputs.scheduler?.agingSeconds ?? SCHEDULER_DEFAULTS.agingSeconds,
    },
    security: securityConfig(inputs),
    isolation: inputs.cluster
      ? // Cluster: control planes run no stage; each worker starts its stages itself, every one in a bubblewrap
        // sandbox, with the worker's node-local model cache read-only.
        { mode: "bubblewrap", sandbox: "bubblewrap", modelCacheDir: `${inputs.tier.mountPath}/models` }
      : // Stages start in the pod's runner container (no Secret there), which sees the model cache read-only.
        {
          mode: "runner",
          sandbox: inputs.stageSandbox === "container" ? "none" : "bubblewrap",
          runnerSocket: AGENT_PATHS.runnerSocket,
          modelCacheDir: `${inputs.tier.mountPath}/models`,
        },
    runtimeRules: collectRuntimeRules(stack),
    cluster: inputs.cluster ?? null,
    comfyui: inputs.comfyui ?? null,
    // Defaults filled by the schema: tracing stays off unless an endpoint is given.
    observability: { tracing: { ...inputs.observability?.tracing } },
  };
  return parsePlatformConfig(config, `platform config of WorkflowDeployment '${inputs.scope.node.path}'`);
}

function securityConfig(inputs: AgentConfigInputs): SecurityConfig {
  const { oidc, secretNames } = inputs;
  return {
    auth: {
      required: true,
      tokens: { secretName: secretNames.tokens, mountPath: AGENT_PATHS.tokens },
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
      keyring: { secretName: secretNames.keyring, mountPath: AGENT_PATHS.keyring },
    },
    audit: {
      signingKey: { secretName: secretNames.auditSigning, mountPath: AGENT_PATHS.auditSigning },
      sink: { type: "volume", claimName: `${inputs.name}-audit`, mountPath: AGENT_PATHS.auditSink },
      checkpointEvery: inputs.auditCheckpoint?.everyEntries ?? 1000,
      checkpointIntervalSeconds: inputs.auditCheckpoint?.intervalSeconds ?? 60,
    },
    tls: {
      enabled: true,
      certificate: { secretName: secretNames.tls, mountPath: AGENT_PATHS.tls },
      ...(inputs.clientCaSecretName ? { clientCa: { secretName: inputs.clientCaSecretName, mountPath: AGENT_PATHS.clientCa } } : {}),
    },
  };
}
