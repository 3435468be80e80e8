/**
 * The cluster option of WorkflowDeployment: control planes (the agent with a PostgreSQL store) and a
 * worker on every GPU node of the pool. Its props, their defaults (the runtime's own, read from
 * runtime/config's ClusterSchema rather than repeated here), and the checks that need more than types.
 */
import { tryParseQuantityMiB } from "../../runtime/graph/index.ts";
import { ClusterSchema, type ClusterConfig } from "../../runtime/config/schema.ts";
import { checkCidr } from "../cidr.ts";
import type { GpuPool } from "../gpu-pool.ts";
import type { StorageTier } from "../storage-tier.ts";
import type { PropIssues } from "../validation.ts";
import { elasticityConfig, validateElasticity, type ClusterElasticityProps } from "./elasticity.ts";

export type DatabaseSslMode = ClusterConfig["databaseSslMode"];
const SSL_MODES: readonly DatabaseSslMode[] = ClusterSchema.shape.databaseSslMode.removeDefault().options;

/**
 * The PostgreSQL database the control planes share. It is referenced, not synthesized: a managed
 * database, or one run by an operator such as CloudNativePG.
 */
export interface ClusterDatabaseProps {
  /**
   * Secret in the deployment's namespace holding the connection URL (`postgres://user:password@host/db`).
   * It reaches the control planes as GPUFABRIC_DATABASE_URL: the password never passes through Terraform
   * or the platform ConfigMap, and no worker ever sees it.
   */
  readonly secretName: string;
  /** Key of the URL in that Secret. @default "url" */
  readonly key?: string;
  /**
   * The TLS the control planes demand of the connection (libpq's sslmode): a URL without sslmode gets
   * this one, a URL with a weaker one is refused. Compliance packs hipaa and soc2 require `verify-full`.
   * @default "verify-full"
   */
  readonly sslMode?: DatabaseSslMode;
  /** The database's TCP port, the only one the control planes may connect to. @default 5432 */
  readonly port?: number;
  /**
   * Where the database is, to narrow the control planes' egress: a CIDR (a managed database's subnet).
   * @default any address, on `port` only
   */
  readonly cidr?: string;
  /** Or the namespace of an in-cluster database (e.g. the CloudNativePG cluster's). @default any address, on `port` only */
  readonly namespace?: string;
  /** With `namespace`: the labels of the database's pods (e.g. `{ "cnpg.io/cluster": "pg" }`). @default every pod of `namespace` */
  readonly podLabels?: Readonly<Record<string, string>>;
}

export interface ClusterWorkerProps {
  /**
   * The workload running the workers. `statefulset`: stable pod names (the token Secret's keys) and a
   * scale the elasticity work (KEDA) can set. `daemonset`: one worker on every node the pool selects,
   * for pools of a fixed size only (KEDA cannot scale a DaemonSet).
   * @default "statefulset"
   */
  readonly kind?: "statefulset" | "daemonset";
  /** Workers (one per GPU node). Only for `statefulset`. @default the pool's nodes */
  readonly replicas?: number;
  /** Size of each worker's node-local model cache (an emptyDir on the node's disk). @default "100Gi" */
  readonly modelCacheSize?: string;
}

export interface ClusterProps {
  readonly database: ClusterDatabaseProps;
  /** Control-plane replicas: every one serves the API, one leader schedules. @default 2 */
  readonly controlPlaneReplicas?: number;
  /** @default one StatefulSet worker per node of the pool */
  readonly workers?: ClusterWorkerProps;
  /**
   * The tier of the storage every control plane and worker mounts (sealed artifacts, logs, the audit
   * sink): it must offer ReadWriteMany (CephFS, NFS, EFS, Filestore, Azure Files).
   * @default the deployment's tier
   */
  readonly sharedTier?: StorageTier;
  /** Size of the shared volume. @default "100Gi" */
  readonly sharedStorageSize?: string;
  /** How long a leader's lease lasts without renewal, in ms. @default runtime/config's ClusterSchema (5000) */
  readonly leaderLeaseMs?: number;
  /** How long a worker stays placed on without a heartbeat, in ms. @default runtime/config's ClusterSchema (10000) */
  readonly workerLeaseMs?: number;
  /**
   * Elastic workers: the control plane scales the worker StatefulSet to what the queue needs (see
   * ./elasticity.ts). @default none: workers.replicas workers, always
   */
  readonly elasticity?: ClusterElasticityProps;
}

/** The cluster option with every default applied. */
export interface ResolvedCluster {
  readonly database: Required<Pick<ClusterDatabaseProps, "secretName" | "key" | "sslMode" | "port">> & Pick<ClusterDatabaseProps, "cidr" | "namespace" | "podLabels">;
  readonly workerKind: "statefulset" | "daemonset";
  /** Undefined for a DaemonSet: the nodes decide. */
  readonly workerReplicas: number | undefined;
  /** The elasticity option as given (undefined: off). */
  readonly elasticity: ClusterElasticityProps | undefined;
  readonly modelCacheSize: string;
  readonly sharedTier: StorageTier;
  readonly sharedStorageSize: string;
  /** The platform config's `cluster` section. */
  readonly config: ClusterConfig;
}

/** Names of the Secrets cluster mode adds; create them before deploying (see README). */
export interface ClusterSecretNames {
  /** The database URL (`ClusterDatabaseProps.secretName`). */
  readonly database: string;
  /** One key per worker pod (`<name>-worker-0`, …) holding that worker's token; mounted by workers only. */
  readonly workerTokens: string;
  /** The hashes of those tokens, in a key named `workers`; mounted by control planes only. */
  readonly workerTokenHashes: string;
}

/** `workload`: the worker StatefulSet's namespace and name, which elasticity's provider names. */
export function resolveCluster(cluster: ClusterProps, pool: GpuPool, tier: StorageTier, workload: { namespace: string; name: string }): ResolvedCluster {
  const workerKind = cluster.workers?.kind ?? "statefulset";
  const database = cluster.database;
  // The runtime's defaults, once: whatever is not given here is what `gpufabric agent` would assume.
  const config = ClusterSchema.parse({
    controlPlaneReplicas: cluster.controlPlaneReplicas ?? 2,
    databaseSslMode: database.sslMode ?? "verify-full",
    ...(cluster.leaderLeaseMs !== undefined ? { leaderLeaseMs: cluster.leaderLeaseMs } : {}),
    ...(cluster.workerLeaseMs !== undefined ? { workerLeaseMs: cluster.workerLeaseMs } : {}),
    elasticity: elasticityConfig(cluster.elasticity, workload),
  });
  // Elastic: the StatefulSet starts at minWorkers (0: from zero, the first run brings the first GPU node up).
  const elasticStart = cluster.elasticity === undefined ? undefined : config.elasticity.minWorkers;
  return {
    database: {
      secretName: database.secretName,
      key: database.key ?? "url",
      sslMode: config.databaseSslMode,
      port: database.port ?? 5432,
      ...(database.cidr !== undefined ? { cidr: database.cidr } : {}),
      ...(database.namespace !== undefined ? { namespace: database.namespace } : {}),
      ...(database.podLabels !== undefined ? { podLabels: database.podLabels } : {}),
    },
    workerKind,
    workerReplicas: workerKind === "daemonset" ? undefined : (cluster.workers?.replicas ?? elasticStart ?? pool.nodes),
    elasticity: cluster.elasticity,
    modelCacheSize: cluster.workers?.modelCacheSize ?? "100Gi",
    sharedTier: cluster.sharedTier ?? tier,
    sharedStorageSize: cluster.sharedStorageSize ?? "100Gi",
    config,
  };
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** Adds the cluster option's problems to `issues`, each under `cluster.<field>`. */
export function validateCluster(issues: PropIssues, name: string, cluster: ClusterProps, context: { pool: GpuPool; tier: StorageTier; gpus: number | undefined; stageSandbox: string | undefined }): void {
  // The StatefulSet `<name>-worker` gets a controller-revision-hash label `<name>-worker-<10 chars>`: a label value of at most 63.
  if (name.length > 45) issues.add("name", `'${name}' is ${name.length} characters: with cluster, use at most 45 (the worker StatefulSet '${name}-worker' names its revisions in a 63-character label)`);
  if (context.gpus !== undefined) issues.add("gpus", "does not apply with cluster: every worker requests all of its node's GPUs (the pool's gpusPerNode); drop gpus");
  if (context.stageSandbox === "container") {
    issues.add("stageSandbox", `"container" does not apply with cluster: workers start every stage in a bubblewrap sandbox, which keeps their token away from stages; drop stageSandbox`);
  }
  validateDatabase(issues, cluster.database);
  const replicas = cluster.controlPlaneReplicas;
  if (replicas !== undefined && issues.positiveInt("cluster.controlPlaneReplicas", replicas) && replicas > 15) {
    issues.add("cluster.controlPlaneReplicas", `${replicas} is more than 15: every replica holds a database connection pool and one schedules; 2 or 3 survive a node loss`);
  }
  validateWorkers(issues, cluster.workers ?? {}, context.pool);
  if (cluster.elasticity !== undefined) validateElasticity(issues, cluster.elasticity, { pool: context.pool, workerKind: cluster.workers?.kind, replicas: cluster.workers?.replicas });
  const shared = cluster.sharedTier ?? context.tier;
  if (!shared.accessModes.includes("ReadWriteMany")) {
    issues.add(
      cluster.sharedTier ? "cluster.sharedTier" : "cluster.sharedTier (defaults to tier)",
      `tier '${shared.name}' offers ${shared.accessModes.join(", ")}, not ReadWriteMany: control planes and workers on different nodes mount the shared volume at once. Pass a tier whose provisioner offers ReadWriteMany (CephFS, NFS, EFS, Filestore, Azure Files) with accessModes: ["ReadWriteMany"]`,
    );
  }
  for (const [field, value] of [
    ["cluster.sharedStorageSize", cluster.sharedStorageSize],
    ["cluster.workers.modelCacheSize", cluster.workers?.modelCacheSize],
  ] as const) {
    const parsed = value === undefined ? undefined : tryParseQuantityMiB(value);
    if (parsed && !parsed.ok) issues.add(field, parsed.message);
  }
  for (const field of ["leaderLeaseMs", "workerLeaseMs"] as const) {
    if (cluster[field] === undefined) continue;
    // The runtime's own bounds, from its schema: a value it would refuse at start is refused here.
    const result = ClusterSchema.shape[field].safeParse(cluster[field]);
    if (!result.success) issues.add(`cluster.${field}`, `${JSON.stringify(cluster[field])}: ${result.error.issues.map((i) => i.message).join("; ")} (milliseconds)`);
  }
}

function validateDatabase(issues: PropIssues, database: ClusterDatabaseProps | undefined): void {
  if (database === undefined || database === null || typeof database !== "object") {
    issues.add("cluster.database", "is missing: name the Secret holding the PostgreSQL URL, e.g. { secretName: \"<name>-database\" }");
    return;
  }
  const { secretName, key, sslMode, port, cidr, namespace, podLabels } = database;
  if (typeof secretName !== "string" || secretName.length > 253 || !DNS_SUBDOMAIN.test(secretName)) {
    issues.add("cluster.database.secretName", `${JSON.stringify(secretName)} is not a Secret name: use lower-case letters, digits, '-' and '.', e.g. "<name>-database"`);
  }
  if (key !== undefined && (typeof key !== "string" || key.length > 253 || !SECRET_KEY.test(key))) {
    issues.add("cluster.database.key", `${JSON.stringify(key)} is not a Secret key: use letters, digits, '-', '_' and '.', e.g. "url"`);
  }
  if (sslMode !== undefined && !SSL_MODES.includes(sslMode)) {
    issues.add("cluster.database.sslMode", `${JSON.stringify(sslMode)} is not one of ${SSL_MODES.map((m) => `"${m}"`).join(", ")}: use "verify-full" (the server's certificate and host name are checked)`);
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) issues.add("cluster.database.port", `${JSON.stringify(port)} is not a port: give a whole number from 1 to 65535`);
  if (cidr !== undefined) {
    const result = checkCidr(cidr);
    if (!result.ok) issues.add("cluster.database.cidr", result.message);
    if (namespace !== undefined) issues.add("cluster.database", "gives both cidr and namespace: give cidr for a database outside the cluster, namespace for one inside");
  }
  if (namespace !== undefined) issues.dnsLabel("cluster.database.namespace", namespace);
  if (podLabels !== undefined) {
    if (namespace === undefined) issues.add("cluster.database.podLabels", "needs namespace: give the namespace the database's pods run in");
    issues.labels("cluster.database.podLabels", podLabels);
  }
}

function validateWorkers(issues: PropIssues, workers: ClusterWorkerProps, pool: GpuPool): void {
  const { kind, replicas } = workers;
  if (kind !== undefined && kind !== "statefulset" && kind !== "daemonset") {
    issues.add("cluster.workers.kind", `${JSON.stringify(kind)} is not "statefulset" (scalable, the default) or "daemonset" (a worker on every pool node, fixed pools only)`);
  }
  if (replicas === undefined) return;
  if (kind === "daemonset") {
    issues.add("cluster.workers.replicas", "does not apply to a DaemonSet, which runs one worker on every node the pool selects: drop replicas, or use kind \"statefulset\"");
    return;
  }
  if (issues.positiveInt("cluster.workers.replicas", replicas) && replicas > pool.nodes) {
    issues.add(
      "cluster.workers.replicas",
      `${replicas} workers for the ${pool.nodes} node(s) of pool '${pool.name}': each worker takes a node of its own, the rest would stay Pending; use at most ${pool.nodes}, or add nodes to the pool`,
    );
  }
}
