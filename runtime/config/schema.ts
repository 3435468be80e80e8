/**
 * The platform config: the one contract between the constructs (which serialize into it at synth)
 * and the runtime agent (which validates it on start). Change it here, bump `version` when the change
 * is incompatible, and both halves follow.
 */
import { z } from "zod";

/** Schema version of the platform config. The agent refuses configs of another version. */
export const PLATFORM_CONFIG_VERSION = 1 as const;

/** DNS-1123 label: what Kubernetes accepts as a namespace or most object names. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const dnsLabel = z
  .string()
  .regex(DNS_LABEL, "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters");

const secretRef = z
  .object({
    /** Name of the Kubernetes Secret (never its value). */
    secretName: dnsLabel,
    /** Where the agent finds the Secret's files. */
    mountPath: z.string().startsWith("/", "must be an absolute path"),
  })
  .strict();

export const PriorityClassSchema = z.enum(["interactive", "batch"]);
export type PriorityClass = z.infer<typeof PriorityClassSchema>;

export const SharingSchema = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("exclusive") }).strict(),
  z
    .object({
      mode: z.literal("mig"),
      /** MIG instances per physical GPU, e.g. { "3g.40gb": 2 }. */
      profiles: z.record(z.string().regex(/^\d+g\.\d+gb$/, "must look like '3g.40gb'"), z.number().int().positive()),
    })
    .strict(),
  z
    .object({
      mode: z.literal("time-slicing"),
      /** How many workloads share one GPU. Time-slicing gives no memory isolation. */
      replicas: z.number().int().min(2).max(64),
    })
    .strict(),
]);
export type Sharing = z.infer<typeof SharingSchema>;

export const DeviceSchema = z
  .object({
    /** Stable id of the device within the pool, e.g. `batch-h100-n0-g1` or `…-g1-mig0`. */
    id: z.string().min(1),
    /** Node the device sits on (devices on one node can serve a multi-GPU stage together). */
    node: z.string().min(1),
    /** Index of the physical GPU on its node. */
    index: z.number().int().nonnegative(),
    /** Memory the device offers to stages, in MiB (a MIG instance's own memory under MIG). */
    memoryMiB: z.number().int().positive(),
    /** MIG profile when the device is a MIG instance. */
    migProfile: z.string().optional(),
  })
  .strict();
export type Device = z.infer<typeof DeviceSchema>;

export const PoolSchema = z
  .object({
    name: dnsLabel,
    gpu: z
      .object({
        /** gpufabric's model name, e.g. `H100-80GB`. */
        model: z.string().min(1),
        /** The `nvidia.com/gpu.product` label GPU Feature Discovery sets on the nodes. */
        product: z.string().min(1),
        memoryMiB: z.number().int().positive(),
      })
      .strict(),
    nodes: z.number().int().positive(),
    gpusPerNode: z.number().int().positive(),
    sharing: SharingSchema,
    devices: z.array(DeviceSchema).min(1),
    nodeSelector: z.record(z.string(), z.string()),
    priorityClasses: z.object({ interactive: dnsLabel, batch: dnsLabel }).strict(),
    /** GPUs each tenant may request in this pool (ResourceQuota on requests.nvidia.com/gpu). */
    tenantQuotas: z.record(dnsLabel, z.number().int().nonnegative()),
  })
  .strict();
export type PoolConfig = z.infer<typeof PoolSchema>;

export const DataClassificationSchema = z.enum(["public", "internal", "confidential", "pii", "phi"]);
export type DataClassification = z.infer<typeof DataClassificationSchema>;

export const TierSchema = z
  .object({
    name: dnsLabel,
    class: z.enum(["hot", "warm", "cold"]),
    storageClassName: dnsLabel,
    /** Where the agent mounts the tier's artifact volume. */
    mountPath: z.string().startsWith("/", "must be an absolute path"),
    /** Artifacts older than this are deleted by the agent; null keeps them forever. */
    retentionDays: z.number().int().positive().nullable(),
    /** Whether the storage class encrypts volumes at rest. */
    encrypted: z.boolean(),
    /** Whether data on this tier must be encrypted (the agent refuses to write otherwise). */
    encryptionRequired: z.boolean(),
    dataClassification: DataClassificationSchema,
  })
  .strict();
export type TierConfig = z.infer<typeof TierSchema>;

export const SegmentSchema = z
  .object({
    name: dnsLabel,
    namespace: dnsLabel,
    defaultDenyIngress: z.boolean(),
    defaultDenyEgress: z.boolean(),
    /** Segments whose pods may reach this segment, with the ports they may use. */
    allowedFrom: z.array(z.object({ segment: dnsLabel, ports: z.array(z.number().int().min(1).max(65535)) }).strict()),
    /** CIDRs pods of this segment may reach outside the cluster. */
    egressCidrs: z.array(z.string()),
  })
  .strict();
export type SegmentConfig = z.infer<typeof SegmentSchema>;

export const RoleSchema = z.enum(["viewer", "submitter", "admin"]);
export type Role = z.infer<typeof RoleSchema>;

export const TenantSchema = z
  .object({
    name: dnsLabel,
    /** Share of the GPUs under contention, relative to the other tenants. */
    weight: z.number().positive(),
    /** GPUs the tenant may hold at once across the deployment's pool; null means no cap. */
    gpuQuota: z.number().int().nonnegative().nullable(),
    /** VRAM the tenant may hold at once, in MiB; null means no cap. */
    vramQuotaMiB: z.number().int().nonnegative().nullable(),
    /** Who may do what: subjects are token names or OIDC subjects/groups (`group:NAME`). */
    roles: z.array(z.object({ subject: z.string().min(1), role: RoleSchema }).strict()),
    dataClassification: DataClassificationSchema,
    /** `dedicated` tenants never share a GPU with another tenant (no time-slicing). */
    isolation: z.enum(["shared", "dedicated"]),
  })
  .strict();
export type TenantConfig = z.infer<typeof TenantSchema>;

export const WorkflowSchema = z
  .object({
    name: dnsLabel,
    /** `native` is gpufabric's Workflow format; `comfyui` an API-format prompt. */
    format: z.enum(["native", "comfyui"]),
    priority: PriorityClassSchema,
    /** Tenants allowed to run this workflow by name (`workflowRef`). */
    tenants: z.array(dnsLabel).min(1),
    /** The workflow document itself; validated by runtime/graph when the agent loads it. */
    document: z.record(z.string(), z.unknown()),
    /** ComfyUI workflows: schedule the prompt's GPU-affine segments apart, or the whole prompt on one GPU. Default: `comfyui.mode`. */
    comfyuiMode: z.enum(["segmented", "whole-graph"]).optional(),
  })
  .strict();
export type WorkflowConfig = z.infer<typeof WorkflowSchema>;

export const SchedulerSettingsSchema = z
  .object({
    /** VRAM kept free on every device, in MiB, against fragmentation and framework overhead. */
    headroomMiB: z.number().int().nonnegative(),
    /** `stage-boundary` lets interactive work take GPUs as batch stages finish; `kill` may stop running batch stages. */
    preemption: z.enum(["never", "stage-boundary", "kill"]),
    /** Seconds of waiting that lift a stage by one priority step, so nothing starves. */
    agingSeconds: z.number().positive(),
  })
  .strict();
export type SchedulerSettings = z.infer<typeof SchedulerSettingsSchema>;
/** The scheduler's settings where none are given: written here once, for the scheduler and the constructs. */
export const SCHEDULER_DEFAULTS: Readonly<SchedulerSettings> = Object.freeze({ headroomMiB: 1024, preemption: "stage-boundary", agingSeconds: 300 });

export const SecuritySchema = z
  .object({
    auth: z
      .object({
        /** Authentication cannot be turned off. */
        required: z.literal(true),
        /** Per-tenant API token hashes, one file per tenant named after it. */
        tokens: secretRef,
        oidc: z
          .object({
            issuer: z.string().url(),
            audience: z.string().min(1),
            jwksUri: z.string().url().optional(),
            algorithms: z.array(z.string()).min(1),
            maxTokenAgeSeconds: z.number().int().positive(),
            requiredClaims: z.array(z.string()),
            tenantClaim: z.string().min(1),
          })
          .strict()
          .optional(),
      })
      .strict(),
    encryption: z
      .object({
        /** Encryption at rest cannot be turned off. */
        atRest: z.literal(true),
        algorithm: z.literal("AES-256-GCM"),
        keyring: secretRef,
      })
      .strict(),
    audit: z
      .object({
        /** Signing key for checkpoints, kept where the log writer cannot alter it. */
        signingKey: secretRef,
        /** Where signed checkpoints are exported. */
        sink: z.object({ type: z.literal("volume"), claimName: dnsLabel, mountPath: z.string().startsWith("/") }).strict(),
        checkpointEvery: z.number().int().positive(),
        checkpointIntervalSeconds: z.number().int().positive(),
      })
      .strict(),
    tls: z
      .object({
        enabled: z.boolean(),
        /** Secret with `tls.crt` and `tls.key`. */
        certificate: secretRef.optional(),
        /**
         * Mutual TLS: a Secret with `ca.crt`; every route but the probes then also requires a client
         * certificate signed by that CA (workers and other agents calling this one).
         */
        clientCa: secretRef.optional(),
      })
      .strict()
      .refine((tls) => tls.clientCa === undefined || (tls.enabled && tls.certificate !== undefined), {
        message: "clientCa (mutual TLS) needs TLS: set enabled: true and a certificate",
        path: ["clientCa"],
      }),
  })
  .strict();
export type SecurityConfig = z.infer<typeof SecuritySchema>;

/**
 * How stage processes are kept apart from the agent and from each other. Every field has a default, so
 * a config without this section gets the secure one: bubblewrap sandboxes, one uid per tenant, no network.
 */
export const IsolationSchema = z
  .object({
    /**
     * `bubblewrap`: the agent starts each stage in its own mount, PID, IPC, UTS and network namespaces
     * (a host, or `gpufabric dev`). `runner`: a runner container of the same pod starts them (Kubernetes:
     * no Secret is ever mounted into that container); the runner applies the same sandbox where it can.
     */
    mode: z.enum(["bubblewrap", "runner"]).default("bubblewrap"),
    /**
     * `bubblewrap`: every stage in namespaces of its own (the agent refuses to start where it cannot).
     * `none`: only with mode `runner`, where the runner's container keeps the agent's Secrets away from
     * stages, but stages share that container (each other's workspaces, the pod's network): for clusters
     * whose pods may not create user namespaces.
     */
    sandbox: z.enum(["bubblewrap", "none"]).default("bubblewrap"),
    /**
     * Stages run as `uidRangeStart + i` (uid and gid), `i` being the tenant's position in `tenants`, when
     * the agent may change users (root or CAP_SETUID); otherwise as the agent's own uid, behind namespaces.
     */
    uidRangeStart: z.number().int().min(1000, "must be 1000 or more: below are system users").max(4_294_000_000).default(200_000),
    /** Whether stages that declare `run.network: egress` may reach the network (outside the cluster: the segment's egress rules still apply). */
    allowEgress: z.boolean().default(false),
    /** A read-only model cache every stage sees at the same path (GPUFABRIC_MODEL_DIR); null: none. */
    modelCacheDir: z.string().startsWith("/", "must be an absolute path").nullable().default(null),
    /** Unix socket of the runner container (mode `runner`), in the volume the two containers share. */
    runnerSocket: z.string().startsWith("/", "must be an absolute path").default("/var/run/gpufabric-runner/runner.sock"),
    limits: z
      .object({
        /** Memory of one stage (cgroup memory.max; RLIMIT_DATA where there is no cgroup v2), in MiB. */
        memoryMiB: z.number().int().min(64).default(65_536),
        /** CPUs of one stage (cgroup cpu.max); with rlimits only, CPU seconds are capped at cpus × timeout. */
        cpus: z.number().positive().max(1024).default(8),
        /** Processes and threads of one stage (cgroup pids.max; RLIMIT_NPROC per tenant uid otherwise). */
        processes: z.number().int().min(8).max(1_000_000).default(4096),
        /** Open files of one stage process (RLIMIT_NOFILE). */
        openFiles: z.number().int().min(64).max(1_048_576).default(65_536),
        /** Largest file a stage may write, in MiB (RLIMIT_FSIZE). */
        fileSizeMiB: z.number().int().min(1).default(65_536),
      })
      .strict()
      .default({ memoryMiB: 65_536, cpus: 8, processes: 4096, openFiles: 65_536, fileSizeMiB: 65_536 }),
  })
  .strict()
  .refine((i) => i.sandbox === "bubblewrap" || i.mode === "runner", {
    message: "sandbox 'none' needs mode 'runner' (a runner container that holds no Secret): where the agent starts stages itself they must be sandboxed",
    path: ["sandbox"],
  });
export type IsolationConfig = z.infer<typeof IsolationSchema>;

/**
 * What turns the pool's desired number of workers into workers. `kubernetes`: the control plane sets the
 * replicas of the workers' workload through its scale subresource (the constructs synthesize a Role that
 * allows exactly that). `none`: the number is only published (gpufabric_pool_desired_workers and
 * GET /v1/pools/:pool/demand), for an autoscaler of the operator's own such as KEDA.
 */
export const ElasticityProviderSchema = z.discriminatedUnion("type", [
  z
    .object({
      type: z.literal("kubernetes"),
      /** Namespace of the workers' workload (the deployment's). */
      namespace: dnsLabel,
      /** The workers' workload kind: the constructs synthesize a StatefulSet. */
      kind: z.enum(["StatefulSet", "Deployment"], { message: "must be 'StatefulSet' (what the constructs synthesize for workers) or 'Deployment'" }).default("StatefulSet"),
      /** Name of the workload, e.g. `<deployment>-worker`. */
      name: dnsLabel,
      /** Where the control plane's pod has its service account token and the cluster's CA (ca.crt). */
      serviceAccountDir: z.string().startsWith("/", "must be an absolute path").default("/var/run/secrets/kubernetes.io/serviceaccount"),
    })
    .strict(),
  z.object({ type: z.literal("none") }).strict(),
]);
export type ElasticityProvider = z.infer<typeof ElasticityProviderSchema>;

/**
 * Elastic workers (cluster mode): the leading control plane computes, every `intervalSeconds`, how many
 * workers the queued work needs (runtime/scheduler/demand.ts) and asks the provider for them. Off by default.
 */
export const ElasticitySchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Workers kept however idle the pool is; 0 lets the pool scale to zero. */
    minWorkers: z.number().int().min(0, "must be 0 or more (0: the pool may scale to zero)").default(0),
    /** Workers asked for at most. Null: one per node of the pool (the most that can register). */
    maxWorkers: z.number().int().min(1, "must be 1 or more: a pool that may never have a worker runs nothing").nullable().default(null),
    /** Seconds of continuous surplus before a worker is let go: a burst right after a lull finds its workers still up. */
    scaleDownCooldownSeconds: z.number().int().min(0).max(86_400, "must be at most 86400 (a day)").default(300),
    /**
     * Seconds a batch stage waits for a GPU freed by running work before it asks for a new worker;
     * interactive stages ask at once (runtime/scheduler/demand.ts).
     */
    batchScaleUpDelaySeconds: z.number().min(0).max(3600, "must be at most 3600 (an hour)").default(30),
    /** How often the demand is computed, in seconds. */
    intervalSeconds: z.number().min(0.2).max(300).default(5),
    provider: ElasticityProviderSchema.default({ type: "none" }),
  })
  .strict()
  .refine((e) => e.maxWorkers === null || e.minWorkers <= e.maxWorkers, { message: "minWorkers must not be above maxWorkers: lower minWorkers or raise maxWorkers", path: ["minWorkers"] });
export type ElasticityConfig = z.infer<typeof ElasticitySchema>;

/**
 * Cluster mode: control planes (the agent with a PostgreSQL store) and a worker on every GPU node. Null: one
 * agent on one node with its embedded store (the default). The database URL is not part of the config: it
 * holds a password, so it comes from a Secret as GPUFABRIC_DATABASE_URL.
 */
export const ClusterSchema = z
  .object({
    /** Control-plane replicas: every one serves the API, one leader schedules. */
    controlPlaneReplicas: z.number().int().min(1).max(15).default(2),
    /** How long a leader's lease lasts without renewal, in ms: a failover takes at most about this long. */
    leaderLeaseMs: z.number().int().min(1000).max(60_000).default(5000),
    /** How long a worker stays placed on without a heartbeat, in ms: then its attempts end interrupted and run elsewhere. */
    workerLeaseMs: z.number().int().min(1000).max(120_000).default(10_000),
    /**
     * The storage every worker and control plane mounts (a ReadWriteMany volume) at this path: sealed
     * artifacts and logs live there, so a stage on one node reads what a stage on another node wrote.
     */
    sharedDir: z.string().startsWith("/", "must be an absolute path").default("/var/lib/gpufabric/shared"),
    /**
     * The TLS the control planes demand of their database connection, as libpq's sslmode: a URL without
     * sslmode gets this one, a URL with a weaker one is refused. `verify-full` checks the server's
     * certificate and host name; `disable` only for a database on the same host.
     */
    databaseSslMode: z.enum(["verify-full", "verify-ca", "require", "disable"]).default("verify-full"),
    /** Hash files of the workers' tokens (one file named `workers`, a line per worker), mounted from a Secret. */
    workerTokens: z.object({ mountPath: z.string().startsWith("/", "must be an absolute path").default("/var/run/gpufabric/worker-tokens") }).strict().default({ mountPath: "/var/run/gpufabric/worker-tokens" }),
    /** Elastic workers for the deployment's pool (the one pool a cluster schedules). @default off */
    elasticity: ElasticitySchema.default(() => ElasticitySchema.parse({})),
  })
  .strict();
export type ClusterConfig = z.infer<typeof ClusterSchema>;

/** How a ComfyUI prompt is scheduled: GPU-affine segments placed apart (each on a GPU of its own), or the whole prompt on one GPU. */
export const ComfyUiModeSchema = z.enum(["segmented", "whole-graph"]);
export type ComfyUiMode = z.infer<typeof ComfyUiModeSchema>;

/** Where a ComfyUI server that is already running serves the GPU with this id. */
export const ComfyUiServerSchema = z
  .object({
    /**
     * Which GPU the server serves, on the machine (the agent, or each worker) that reads the config:
     * the GPU's id as the pool names it (`local-g0`, `batch-h100-n0-g1`); on a worker, also
     * `<node>-g<index>` with the node as the worker names itself (`--node`, else its host name), also
     * when that node is not in the pool; or a CUDA index alone (`"0"`), which every machine reading the
     * config resolves to its own GPU of that index: for a config that all workers share, their servers
     * beside them on the same loopback URLs. Entries that name no GPU of a machine are left to others;
     * a worker to which no entry resolves refuses to start.
     */
    gpu: z.string().min(1),
    /** Base URL of the server (its own `--listen` address), e.g. http://127.0.0.1:8188. */
    url: z.string().url("must be a URL like http://127.0.0.1:8188"),
  })
  .strict();

/**
 * ComfyUI workers: the stages of ComfyUI prompts run on real ComfyUI servers, one pinned to each GPU.
 * Null: no ComfyUI server is configured and ComfyUI stages are simulated (every status says so).
 */
export const ComfyUiSchema = z
  .object({
    mode: ComfyUiModeSchema.default("segmented"),
    /**
     * The program that starts one server per GPU, as argv (no shell): `{port}` becomes the server's
     * port, `{gpu}` the GPU's CUDA index, e.g. ["python", "main.py", "--listen", "127.0.0.1",
     * "--port", "{port}", "--cuda-device", "{gpu}"]. A server that exits is started again.
     */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** The folder the command starts in (ComfyUI's checkout). */
    workingDir: z.string().startsWith("/", "must be an absolute path").optional(),
    /** Servers already running, one per GPU: attached to instead of started. */
    servers: z.array(ComfyUiServerSchema).optional(),
    /** Loopback ports of the servers the command starts, one per GPU, from `from` on. */
    portRange: z
      .object({ from: z.number().int().min(1024).max(65535), to: z.number().int().min(1024).max(65535) })
      .strict()
      .refine((r) => r.to >= r.from, { message: "'to' must not be below 'from'", path: ["to"] })
      .default({ from: 8190, to: 8253 }),
    /** How long a server may take to answer after it starts (model folders are scanned then), in ms. */
    startTimeoutMs: z.number().int().min(1000).max(600_000).default(120_000),
    /** Container image of the ComfyUI server (cluster deployments run it beside the worker). */
    image: z.string().min(1).optional(),
    /** The volume holding the models, mounted read-only into every ComfyUI server. */
    modelsVolume: z.object({ claimName: dnsLabel, mountPath: z.string().startsWith("/", "must be an absolute path") }).strict().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.command === undefined) === (c.servers === undefined) && c.image === undefined) {
      ctx.addIssue({ code: "custom", path: ["command"], message: "give exactly one of 'command' (start a server per GPU) or 'servers' (attach to running ones), or an 'image' for the deployment to run" });
    }
    if (c.command !== undefined && c.servers !== undefined) {
      ctx.addIssue({ code: "custom", path: ["servers"], message: "give 'command' or 'servers', not both" });
    }
    if (c.command !== undefined && !c.command.some((a) => a.includes("{port}"))) {
      ctx.addIssue({ code: "custom", path: ["command"], message: "must pass the server its port: put '{port}' in an argument, e.g. '--port', '{port}'" });
    }
    const gpus = new Set<string>();
    c.servers?.forEach((s, i) => {
      if (gpus.has(s.gpu)) ctx.addIssue({ code: "custom", path: ["servers", i, "gpu"], message: `GPU '${s.gpu}' has a server already: one server per GPU` });
      gpus.add(s.gpu);
    });
  });
export type ComfyUiConfig = z.infer<typeof ComfyUiSchema>;

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Traces of runs over OpenTelemetry (OTLP/HTTP, JSON): one trace per run, a span per stage attempt with
 * its queue wait, placement, model load, execution and sealing. Off unless an endpoint is given: then
 * the agent loads no OpenTelemetry code at all and stage processes get no TRACEPARENT.
 */
export const TracingSchema = z
  .object({
    /**
     * Where spans are POSTed: the collector's OTLP/HTTP traces URL, e.g.
     * http://otel-collector.observability:4318/v1/traces. Null: tracing is off (the default).
     */
    endpoint: z
      .string()
      .url("must be the collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces")
      .refine((u) => !URL.canParse(u) || /^https?:$/.test(new URL(u).protocol), "must be an http:// or https:// URL (OTLP/HTTP), e.g. http://otel-collector:4318/v1/traces")
      .nullable()
      .default(null),
    /**
     * Headers sent with every export, e.g. a collector's API key. Their values are never logged nor
     * shown by the agent; keep a secret one out of version control as you would the config itself.
     */
    headers: z
      .record(z.string(), z.string().max(8192))
      .superRefine((headers, ctx) => {
        for (const name of Object.keys(headers)) {
          if (!HEADER_NAME.test(name)) ctx.addIssue({ code: "custom", path: [name], message: "must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-), e.g. 'x-api-key'" });
        }
      })
      .default({}),
    /** The `service.name` resource attribute of every span. */
    serviceName: z.string().min(1).max(200).default("gpufabric-agent"),
    /**
     * Share of runs traced, from 0 to 1. Decided from the run's trace id, so every control plane and
     * worker decides alike for one run.
     */
    sampleRatio: z.number().min(0, "must be between 0 and 1").max(1, "must be between 0 and 1").default(1),
  })
  .strict();
export type TracingConfig = z.infer<typeof TracingSchema>;

/** What the agent tells observability systems beyond /metrics. Every field has a default: tracing off. */
export const ObservabilitySchema = z
  .object({
    tracing: TracingSchema.default(() => TracingSchema.parse({})),
  })
  .strict();
export type ObservabilityConfig = z.infer<typeof ObservabilitySchema>;

/** A rule the agent enforces when a run is submitted; produced by the compliance packs. */
export const RuntimeRuleSchema = z
  .object({
    id: z.string().min(1),
    description: z.string().min(1),
    /** Tenants the rule applies to, by data classification. Empty: every tenant. */
    tenantClassifications: z.array(DataClassificationSchema),
    require: z
      .object({
        poolSharing: z.array(z.enum(["exclusive", "mig", "time-slicing"])).optional(),
        segmentDefaultDeny: z.boolean().optional(),
        tierEncrypted: z.boolean().optional(),
        allowedRegions: z.array(z.string()).optional(),
      })
      .strict(),
  })
  .strict();
export type RuntimeRule = z.infer<typeof RuntimeRuleSchema>;

export const PlatformConfigSchema = z
  .object({
    version: z.literal(PLATFORM_CONFIG_VERSION),
    platform: z
      .object({
        name: dnsLabel,
        /** Where the cluster runs; used by residency rules. */
        region: z.string().min(1).nullable(),
        zones: z.array(z.string()),
      })
      .strict(),
    /** The agent this config belongs to. */
    deployment: z
      .object({
        name: dnsLabel,
        namespace: dnsLabel,
        pool: dnsLabel,
        tier: dnsLabel,
        segment: dnsLabel,
        listen: z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) }).strict(),
        /** Where the agent keeps its store and workspaces (a volume in the cluster). */
        dataDir: z.string().startsWith("/", "must be an absolute path"),
        image: z.string().min(1),
      })
      .strict(),
    pools: z.array(PoolSchema).min(1),
    tiers: z.array(TierSchema).min(1),
    segments: z.array(SegmentSchema).min(1),
    tenants: z.array(TenantSchema).min(1),
    workflows: z.array(WorkflowSchema),
    scheduler: SchedulerSettingsSchema,
    security: SecuritySchema,
    isolation: IsolationSchema.default(IsolationSchema.parse({})),
    cluster: ClusterSchema.nullable().default(null),
    comfyui: ComfyUiSchema.nullable().default(null),
    observability: ObservabilitySchema.default(() => ObservabilitySchema.parse({})),
    runtimeRules: z.array(RuntimeRuleSchema),
  })
  .strict()
  .superRefine((config, ctx) => {
    const names = (items: { name: string }[]) => new Set(items.map((i) => i.name));
    const pools = names(config.pools);
    const tiers = names(config.tiers);
    const segments = names(config.segments);
    const tenants = names(config.tenants);
    const check = (ok: boolean, path: (string | number)[], message: string) => {
      if (!ok) ctx.addIssue({ code: "custom", path, message });
    };
    check(pools.has(config.deployment.pool), ["deployment", "pool"], `unknown pool '${config.deployment.pool}': declare it under pools`);
    check(tiers.has(config.deployment.tier), ["deployment", "tier"], `unknown tier '${config.deployment.tier}': declare it under tiers`);
    check(segments.has(config.deployment.segment), ["deployment", "segment"], `unknown segment '${config.deployment.segment}': declare it under segments`);
    for (const [kind, list] of [
      ["pools", config.pools],
      ["tiers", config.tiers],
      ["segments", config.segments],
      ["tenants", config.tenants],
      ["workflows", config.workflows],
    ] as const) {
      const seen = new Set<string>();
      list.forEach((item, i) => {
        check(!seen.has(item.name), [kind, i, "name"], `duplicate name '${item.name}': names must be unique within ${kind}`);
        seen.add(item.name);
      });
    }
    config.workflows.forEach((wf, i) =>
      wf.tenants.forEach((t, j) => check(tenants.has(t), ["workflows", i, "tenants", j], `unknown tenant '${t}': declare it under tenants`)),
    );
    const elastic = config.cluster?.elasticity;
    const deployed = config.pools.find((p) => p.name === config.deployment.pool);
    if (elastic && deployed && elastic.maxWorkers !== null && elastic.maxWorkers > deployed.nodes) {
      check(false, ["cluster", "elasticity", "maxWorkers"], `${elastic.maxWorkers} workers for the ${deployed.nodes} node(s) of pool '${deployed.name}': each worker serves a node of the pool; use at most ${deployed.nodes}, or declare more nodes`);
    }
    if (elastic && deployed && elastic.minWorkers > deployed.nodes) {
      check(false, ["cluster", "elasticity", "minWorkers"], `${elastic.minWorkers} workers for the ${deployed.nodes} node(s) of pool '${deployed.name}': use at most ${deployed.nodes}`);
    }
    config.pools.forEach((pool, i) =>
      Object.keys(pool.tenantQuotas).forEach((t) =>
        check(tenants.has(t), ["pools", i, "tenantQuotas", t], `quota for unknown tenant '${t}': declare it under tenants`),
      ),
    );
  });

export type PlatformConfig = z.infer<typeof PlatformConfigSchema>;
