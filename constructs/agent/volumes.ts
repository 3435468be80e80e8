/**
 * Every volume an agent's pod may mount, made once so the agent's and the runner's containers mount the
 * same objects: the config, the agent's Secrets, its state and audit-sink claims (created here), the
 * tier's model and artifact claims, and two memory-backed scratch volumes.
 */
import { PersistentVolumeClaimV1 } from "@cdktf/provider-kubernetes/lib/persistent-volume-claim-v1/index.js";
import type { Construct } from "constructs";
import type { NetworkSegment } from "../network-segment.ts";
import type { StorageTier } from "../storage-tier.ts";
import type { AgentMetadata } from "./metadata.ts";
import { Volume } from "./volume.ts";

/** Names of the Secrets an agent needs; they are created outside the platform code (see README). */
export interface AgentSecretNames {
  readonly keyring: string;
  readonly tokens: string;
  readonly auditSigning: string;
  readonly tls: string;
}

export interface AgentVolumesProps {
  readonly meta: AgentMetadata;
  readonly configMapName: string;
  readonly secretNames: AgentSecretNames;
  /** A Secret holding `ca.crt` for client certificates. @default none */
  readonly clientCaSecretName?: string;
  readonly tier: StorageTier;
  readonly segment: NetworkSegment;
  /** @default "20Gi" */
  readonly stateSize?: string;
  /** @default "5Gi" */
  readonly auditSinkSize?: string;
}

export class AgentVolumes {
  readonly config: Volume;
  readonly keyring: Volume;
  readonly tokens: Volume;
  readonly auditSigning: Volume;
  readonly tls: Volume;
  readonly clientCa: Volume | undefined;
  /** The agent's store and stage outputs; one writer at a time (ReadWriteOnce). */
  readonly state: Volume;
  readonly auditSink: Volume;
  readonly models: Volume;
  readonly artifacts: Volume;
  /** Stage workspaces live in memory so plaintext never lands on a node's disk. */
  readonly scratch: Volume;
  /** The runner's socket: only the agent's and the runner's containers mount it. */
  readonly runnerSocket: Volume;
  readonly stateClaim: PersistentVolumeClaimV1;
  readonly auditClaim: PersistentVolumeClaimV1;

  /** Adds its claims to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: AgentVolumesProps) {
    const { meta, tier } = props;
    // Before the agent's own claims: the tier creates the segment's claims on first use, and objects synthesize in creation order.
    const tierClaims = tier.claimsFor(props.segment);
    const claim = (id: string, name: string, component: string, storage: string) =>
      new PersistentVolumeClaimV1(scope, id, {
        metadata: meta.of(name, component),
        spec: { accessModes: ["ReadWriteOnce"], storageClassName: tier.storageClassName, resources: { requests: { storage } } },
        // WaitForFirstConsumer classes bind only once the agent pod is scheduled.
        waitUntilBound: false,
      });
    this.stateClaim = claim("StateVolume", `${meta.name}-state`, "state", props.stateSize ?? "20Gi");
    this.auditClaim = claim("AuditSinkVolume", `${meta.name}-audit`, "audit-sink", props.auditSinkSize ?? "5Gi");

    this.config = Volume.fromConfigMap("config", props.configMapName);
    this.keyring = Volume.fromSecret("keyring", props.secretNames.keyring);
    this.tokens = Volume.fromSecret("tokens", props.secretNames.tokens);
    this.auditSigning = Volume.fromSecret("audit-signing", props.secretNames.auditSigning);
    this.tls = Volume.fromSecret("tls", props.secretNames.tls);
    this.clientCa = props.clientCaSecretName ? Volume.fromSecret("client-ca", props.clientCaSecretName) : undefined;
    this.state = Volume.fromPersistentVolumeClaim("state", this.stateClaim.metadata.name);
    this.auditSink = Volume.fromPersistentVolumeClaim("audit-sink", this.auditClaim.metadata.name);
    this.models = Volume.fromPersistentVolumeClaim("models", tierClaims.models);
    this.artifacts = Volume.fromPersistentVolumeClaim("artifacts", tierClaims.artifacts);
    this.scratch = Volume.fromEmptyDir("scratch", { medium: "Memory", sizeLimit: "8Gi" });
    this.runnerSocket = Volume.fromEmptyDir("runner-socket", { medium: "Memory", sizeLimit: "1Mi" });
  }
}
