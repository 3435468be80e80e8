/**
 * What a worker and the control plane say to each other, over HTTPS with the worker's own bearer token
 * (`/v1/cluster/...`). Workers never reach the database; they hold no keyring either: the leader wraps
 * and unwraps data keys for them, one object at a time, and only for the attempts it gave them.
 *
 *  register  → the leader binds the worker to one node of the pool and brings its GPUs into service.
 *  poll      → a heartbeat and a long poll in one: the worker says what it runs, the leader answers with
 *              new assignments and the attempts to stop, at once when it has some.
 *  started / finished → the attempt's process started; it ended (outputs already sealed to the shared storage).
 *  keys      → wrap the data key of an output or log the attempt writes; unwrap that of an input it reads.
 *  comfy-events        → live events of its ComfyUI attempts, batched, for the leader's `/comfyui/ws` clients.
 *  comfy-introspection → what its ComfyUI servers offer, on registration and on change (the leader's `/object_info`).
 *  drain     → the worker is going away (SIGTERM: a scale-down): "draining" takes its GPUs out of placement
 *              while its running attempts finish; "left", once it holds none, makes the leader forget it.
 *
 * A control plane that does not lead answers 421 with the leader's URL; every assignment carries the
 * leader's epoch and an attempt token, and reports with a token the leader no longer knows are refused (409).
 */
import { z } from "zod";

export const WORKER_PROTOCOL = 1;
export const CLUSTER_PREFIX = "/v1/cluster";

const id = z.string().min(1).max(200);
/** A node name as Kubernetes writes it (DNS-1123 subdomain), or a host name. */
const nodeName = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i, "must be a node name (letters, digits, '.' and '-', at most 253)");
/** A path below the shared storage, as the leader and the workers each mount it at their own place. */
const sharedPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.startsWith("/") && !p.split("/").some((s) => s === "" || s === "." || s === ".."), "must be a relative path inside the shared storage");

export const DeviceReportSchema = z
  .object({
    index: z.number().int().min(0).max(1023),
    uuid: z.string().min(1).max(200).nullable(),
    name: z.string().min(1).max(200),
    memoryMiB: z.number().int().positive(),
    memoryUsedMiB: z.number().int().min(0).optional(),
    simulated: z.boolean(),
  })
  .strict();
export type DeviceReport = z.infer<typeof DeviceReportSchema>;

export const RegisterRequestSchema = z
  .object({
    protocol: z.literal(WORKER_PROTOCOL),
    node: nodeName,
    devices: z.array(DeviceReportSchema).min(1).max(64),
    /** Models already in the node-local model cache. */
    residentModels: z.array(z.string().min(1).max(500)).max(1000).default([]),
    /** How the worker keeps stages apart (audited by the control plane). */
    isolation: z.object({ sandbox: z.enum(["per-tenant", "shared-uid", "none"]), unsafe: z.boolean() }).strict(),
  })
  .strict();
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

export interface RegisterResponse {
  readonly workerId: string;
  readonly epoch: number;
  readonly leaseMs: number;
  /** The pool node this worker serves. */
  readonly node: string;
  /** Its GPUs in service, by index, with the pool's device ids. */
  readonly devices: ReadonlyArray<{ readonly index: number; readonly id: string }>;
}

export const PollRequestSchema = z
  .object({
    workerId: id,
    /** Every attempt the worker still holds (started, running, or ended and not yet reported). */
    running: z.array(id).max(10_000),
    /** How long to hold the request open when there is nothing to say (ms). */
    waitMs: z.number().int().min(0).max(30_000),
    devices: z.array(z.object({ index: z.number().int().min(0), memoryUsedMiB: z.number().int().min(0) }).strict()).max(64).optional(),
  })
  .strict();
export type PollRequest = z.infer<typeof PollRequestSchema>;

export interface AssignmentGpu {
  readonly id: string;
  readonly index: number;
  readonly uuid: string | null;
  readonly simulated: boolean;
}

export interface Assignment {
  readonly attemptId: string;
  /** Proves the reports of this attempt come from the worker it was given to, in this tenure. */
  readonly token: string;
  readonly epoch: number;
  readonly runId: string;
  readonly tenant: string;
  readonly stageId: string;
  readonly number: number;
  /** The stage as the graph model has it (command, resources, estimates). */
  readonly stage: unknown;
  readonly gpus: readonly AssignmentGpu[];
  /** Sealed outputs of the stages it needs, below the shared storage. */
  readonly inputs: ReadonlyArray<{ readonly stageId: string; readonly name: string; readonly path: string }>;
  readonly runInputs: Readonly<Record<string, unknown>> | null;
  /** A ComfyUI workflow's stage: every node of its prompt, for the worker's ComfyUI server. */
  readonly comfy?: { readonly nodes: readonly unknown[] };
  /** The key version new data keys are wrapped under. */
  readonly keyVersion: number;
  /** The attempt's W3C trace context when the leader traces runs: the worker's stage process gets it as TRACEPARENT. */
  readonly trace?: { readonly traceparent: string; readonly tracestate?: string };
}

export interface PollResponse {
  readonly epoch: number;
  readonly assignments: readonly Assignment[];
  /** Attempts to stop: cancelled, preempted, or unknown to this leader (a former leader's). */
  readonly cancel: readonly string[];
}

/**
 * A worker going away on purpose (SIGTERM, a scale-down). `draining`: the leader places nothing more on its
 * GPUs at once, and the attempts it already holds run to their end and are reported as usual. `left`: it
 * holds no attempt any more and exits; the leader forgets it now rather than after its lease.
 */
export const DrainRequestSchema = z.object({ workerId: id, phase: z.enum(["draining", "left"]) }).strict();
export type DrainRequest = z.infer<typeof DrainRequestSchema>;

export interface DrainResponse {
  /** The attempts the leader still counts as this worker's (queued, sent or started). */
  readonly attempts: number;
}

const attemptRef = { workerId: id, token: z.string().min(16).max(200) };

export const StartedReportSchema = z
  .object({ ...attemptRef, pid: z.number().int().positive().nullable(), workspace: z.string().max(4096).nullable() })
  .strict();
export type StartedReport = z.infer<typeof StartedReportSchema>;

export const FinishedReportSchema = z
  .object({
    ...attemptRef,
    outcome: z
      .object({
        exitCode: z.number().int().nullable(),
        signal: z.string().max(32).nullable(),
        /** `interrupted`: the worker itself stopped (SIGINT, a second SIGTERM): rerun elsewhere, not a failure. */
        reason: z.enum(["completed", "exit-code", "signal", "timeout", "cancelled", "interrupted", "setup-failed"]),
        message: z.string().max(4000),
        peakVramMiB: z.number().int().min(0).optional(),
        simulated: z.boolean(),
        /** A ComfyUI attempt: the models its server holds now. */
        residentModels: z.array(z.string().min(1).max(500)).max(1000).optional(),
      })
      .strict(),
    artifacts: z
      .array(z.object({ name: z.string().min(1).max(255), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/), path: sharedPath }).strict())
      .max(10_000),
  })
  .strict();
export type FinishedReport = z.infer<typeof FinishedReportSchema>;

export const KeyRequestSchema = z
  .object({
    ...attemptRef,
    op: z.enum(["wrap", "unwrap"]),
    version: z.number().int().min(1),
    /** The AAD the worker's envelope encryption binds (canonical JSON of tenant, run, objectId and keyVersion). */
    aad: z.string().min(1).max(8192),
    /** base64: a fresh data key (wrap) or a wrapped one (unwrap). */
    key: z.string().min(1).max(4096),
  })
  .strict();
export type KeyRequest = z.infer<typeof KeyRequestSchema>;

/** Answer of a control plane that does not lead: where the leader is (null while none is known). */
export interface NotLeader {
  readonly error: "not-leader";
  readonly leader: string | null;
  readonly message: string;
}

/** Live events of one call of `comfy-events`: at most this many. */
export const MAX_COMFY_EVENTS = 64;
/** A preview image larger than this is not forwarded (a real server's previews are a few KiB to a few hundred). */
export const MAX_COMFY_PREVIEW_BYTES = 256 * 1024;
/** One event's `data`, as JSON, at most this long. */
export const MAX_COMFY_EVENT_DATA_CHARS = 64 * 1024;

const comfyAttempt = { token: z.string().min(16).max(200), attemptId: id };
/**
 * Live events of the worker's ComfyUI attempts (what its relay heard from its servers), forwarded to the
 * leader's relay for its `/comfyui/ws` clients. Each names the attempt by its token: the leader accepts
 * only events of open attempts it gave this worker.
 */
export const ComfyEventsSchema = z
  .object({
    workerId: id,
    events: z
      .array(
        z.discriminatedUnion("kind", [
          z
            .object({
              kind: z.literal("message"),
              ...comfyAttempt,
              type: z.enum(["execution_cached", "executing", "progress", "progress_state", "executed"]),
              data: z.record(z.string(), z.unknown()).refine((d) => JSON.stringify(d).length <= MAX_COMFY_EVENT_DATA_CHARS, `must be at most ${MAX_COMFY_EVENT_DATA_CHARS} characters as JSON`),
            })
            .strict(),
          z
            .object({
              kind: z.literal("preview"),
              ...comfyAttempt,
              eventType: z.number().int().min(0).max(0xffffffff),
              /** base64 of what followed the event type in the server's binary frame. */
              payload: z.string().max(Math.ceil(MAX_COMFY_PREVIEW_BYTES / 3) * 4),
            })
            .strict(),
        ])
      )
      .min(1)
      .max(MAX_COMFY_EVENTS),
    /** Events the worker dropped since its last call (leader unreachable, queue full, preview too large). */
    dropped: z.number().int().min(0).default(0),
  })
  .strict();
export type ComfyEvents = z.infer<typeof ComfyEventsSchema>;

/** The request body limit of `comfy-introspection`: a real server's `/object_info` runs to a few MiB. */
export const COMFY_INTROSPECTION_BODY_LIMIT = 32 * 1024 * 1024;

/**
 * What the worker's ComfyUI servers offer (the intersection over its ready servers; null while none is
 * ready), sent when it registers and whenever it changes, with a hash of it.
 */
export const ComfyIntrospectionReportSchema = z
  .object({
    workerId: id,
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    objectInfo: z.record(z.string(), z.unknown()).nullable(),
    models: z.record(z.string(), z.array(z.string().max(1000)).max(100_000)).nullable(),
  })
  .strict();
export type ComfyIntrospectionReport = z.infer<typeof ComfyIntrospectionReportSchema>;
