/** What the agent's HTTP API is built from, and what each request carries through its hooks. */
import type { Logger } from "pino";
import type { PlatformConfig } from "../../config/schema.ts";
import type { Scheduler } from "../../scheduler/index.ts";
import type { Authenticator, Identity } from "../../security/identity/index.ts";
import type { Authorizer } from "../../security/authz/index.ts";
import type { KeyProvider } from "../../security/crypto/index.ts";
import type { ClusterHttp } from "../cluster/routes.ts";
import type { PoolDemandSnapshot } from "../cluster/elastic/controller.ts";
import type { ComfyIntrospection, ComfyRelay } from "../executors/comfyui/contract.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { Store } from "../store/types.ts";
import type { AuditTrail } from "../service/audit-trail.ts";
import type { ArtifactSealer } from "../service/sealing.ts";
import type { ModelTags } from "../service/model-tags.ts";
import type { RunQueue } from "../service/run-queue.ts";
import type { AgentMetrics } from "../service/metrics.ts";
import type { GpuHistory } from "../service/gpu-history.ts";
import type { SubmissionContext } from "../service/submission.ts";

declare module "fastify" {
  interface FastifyRequest {
    identity: Identity | null;
    /** What the audit entry of this request says beyond the route (set as the request is handled). */
    auditInfo: AuditInfo | null;
    /** The JSON text of a body large enough to be validated on the submission thread. */
    largeJsonText: string | null;
  }
}

export interface AuditInfo {
  action?: string;
  /** The verified caller, also when authorization then refused it. */
  caller?: Identity;
  object?: string;
  rule?: string;
}

export interface HttpParts {
  readonly config: PlatformConfig;
  readonly store: Store;
  readonly loop: RunQueue;
  /** The scheduler of this process, while it has one (a control plane that does not lead has none). */
  readonly scheduler: () => Scheduler | undefined;
  readonly devices: readonly GpuDevice[];
  readonly inventorySource: "nvidia-smi" | "simulated" | "comfyui";
  /** The devices' VRAM and utilization over the last 24 h (absent: the GPU routes sample their own). */
  readonly gpuHistory?: GpuHistory;
  readonly submission: SubmissionContext;
  readonly metrics: AgentMetrics;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  readonly audit: AuditTrail;
  /** Seals sensitive fields before they reach the store. */
  readonly keys: KeyProvider;
  /** Stand-ins the store keeps instead of the model names of sealed documents. */
  readonly modelTags?: ModelTags;
  readonly sealer: ArtifactSealer;
  readonly logger: Logger;
  readonly dataDir: string;
  /** Where stages work and their logs are kept (memory where the machine allows). */
  readonly scratchDir: string;
  /** Listening on a loopback address only: then the Host header must name loopback too (DNS rebinding). */
  readonly loopbackOnly: boolean;
  readonly bodyLimitBytes: number;
  /** Arrays and objects nested deeper than this in a body are refused before anything walks them. */
  readonly maxJsonDepth?: number;
  readonly isReady: () => boolean;
  /** How often an event stream reads the store for changes made elsewhere (cluster mode), in ms. */
  readonly eventPollMs?: number;
  /** ComfyUI servers of this process: live events of their attempts, and what they offer (absent: none configured). */
  readonly comfy?: { readonly relay?: ComfyRelay; readonly introspection?: ComfyIntrospection };
  /** Cluster mode: the workers' routes and their authentication. */
  readonly cluster?: ClusterHttp;
  /** Cluster mode: the deployment pool's demand, while this control plane leads with elasticity on. */
  readonly demand?: () => PoolDemandSnapshot | undefined;
}
