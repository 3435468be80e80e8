/**
 * Every volume of a cluster's pods, made once so control planes and workers mount the same objects.
 * Control planes get the agent's Secrets, the worker token hashes and the audit sink; workers get only
 * their tokens, the CA certificate (never the TLS key beside it), the config and the shared volume. The
 * database URL is no volume: it reaches the control planes alone, as an environment variable.
 */
import { PersistentVolumeClaimV1 } from "@cdktf/provider-kubernetes/lib/persistent-volume-claim-v1/index.js";
import type { Construct } from "constructs";
import type { AgentMetadata } from "../agent/metadata.ts";
import { Volume } from "../agent/volume.ts";
import type { AgentSecretNames } from "../agent/volumes.ts";
import type { ClusterSecretNames, ResolvedCluster } from "./props.ts";

export interface ClusterVolumesProps {
  readonly meta: AgentMetadata;
  readonly configMapName: string;
  readonly secretNames: AgentSecretNames;
  readonly clusterSecretNames: ClusterSecretNames;
  /** A Secret holding `ca.crt` for client certificates. @default none */
  readonly clientCaSecretName?: string;
  readonly cluster: ResolvedCluster;
  /** @default "5Gi" */
  readonly auditSinkSize?: string;
  /** Size of each control plane's local data directory (no store there: it is in PostgreSQL). @default "20Gi" */
  readonly stateSize?: string;
}

export class ClusterVolumes {
  readonly config: Volume;
  readonly keyring: Volume;
  readonly tokens: Volume;
  readonly auditSigning: Volume;
  readonly tls: Volume;
  readonly clientCa: Volume | undefined;
  /** The hashes of the workers' tokens (key `workers`), for control planes to check them. */
  readonly workerTokenHashes: Volume;
  /** The workers' tokens, one key per worker pod; each worker reads its own. */
  readonly workerTokens: Volume;
  /** Only `ca.crt` of the TLS Secret: workers verify the control plane with it and never see its key. */
  readonly caCertificate: Volume;
  /** Sealed artifacts and logs, shared by every node (ReadWriteMany). */
  readonly shared: Volume;
  readonly auditSink: Volume;
  /** A control plane's data directory: node-local and disposable, the state lives in PostgreSQL. */
  readonly data: Volume;
  /** Stage workspaces live in memory so plaintext never lands on a node's disk. */
  readonly scratch: Volume;
  /** A worker's node-local model cache, on the node's disk: models are not secret, and too large for memory. */
  readonly modelCache: Volume;
  readonly sharedClaim: PersistentVolumeClaimV1;
  readonly auditClaim: PersistentVolumeClaimV1;

  /** Adds its claims to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: ClusterVolumesProps) {
    const { meta, cluster } = props;
    const tier = cluster.sharedTier;
    // Both claims are mounted by pods on several nodes at once: ReadWriteMany on the shared tier's class.
    const claim = (id: string, name: string, component: string, storage: string) =>
      new PersistentVolumeClaimV1(scope, id, {
        metadata: meta.of(name, component),
        spec: { accessModes: ["ReadWriteMany"], storageClassName: tier.storageClassName, resources: { requests: { storage } } },
        // WaitForFirstConsumer classes bind only once a pod is scheduled.
        waitUntilBound: false,
        dependsOn: [tier.storageClass],
      });
    this.sharedClaim = claim("SharedVolume", `${meta.name}-shared`, "shared-volume", cluster.sharedStorageSize);
    // The name the platform config's audit sink gives (security.audit.sink.claimName).
    this.auditClaim = claim("AuditSinkVolume", `${meta.name}-audit`, "audit-sink", props.auditSinkSize ?? "5Gi");

    const s = props.secretNames;
    this.config = Volume.fromConfigMap("config", props.configMapName);
    this.keyring = Volume.fromSecret("keyring", s.keyring);
    this.tokens = Volume.fromSecret("tokens", s.tokens);
    this.auditSigning = Volume.fromSecret("audit-signing", s.auditSigning);
    this.tls = Volume.fromSecret("tls", s.tls);
    this.clientCa = props.clientCaSecretName ? Volume.fromSecret("client-ca", props.clientCaSecretName) : undefined;
    this.workerTokenHashes = Volume.fromSecret("worker-token-hashes", props.clusterSecretNames.workerTokenHashes, { items: [{ key: "workers", path: "workers" }] });
    this.workerTokens = Volume.fromSecret("worker-tokens", props.clusterSecretNames.workerTokens);
    this.caCertificate = Volume.fromSecret("ca-certificate", s.tls, { items: [{ key: "ca.crt", path: "ca.crt" }] });
    this.shared = Volume.fromPersistentVolumeClaim("shared", this.sharedClaim.metadata.name);
    this.auditSink = Volume.fromPersistentVolumeClaim("audit-sink", this.auditClaim.metadata.name);
    this.data = Volume.fromEmptyDir("state", { sizeLimit: props.stateSize ?? "20Gi" });
    this.scratch = Volume.fromEmptyDir("scratch", { medium: "Memory", sizeLimit: "8Gi" });
    this.modelCache = Volume.fromEmptyDir("model-cache", { sizeLimit: cluster.modelCacheSize });
  }
}
