/**
 * The leader's view of its workers: which worker serves which node of the pool, their heartbeats, and the
 * attempts given to each. The scheduler places stages on the pool's devices; a device is in service only
 * while a live worker serves its node. A worker that misses its lease is lost: its GPUs leave service, and
 * each of its attempts ends `interrupted`, so the loop places the stage again elsewhere (without counting
 * a failure).
 *
 * A worker going away on purpose (SIGTERM, a scale-down) drains instead: its GPUs leave placement at once
 * while the attempts it holds run to their end, and once it holds none it leaves and is forgotten; nothing
 * ends interrupted.
 *
 * Every attempt is handed out with the leader's epoch and a random token; reports and key requests must
 * carry that token, from the worker it was given to, while this registry (this tenure) lives.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { join, relative, sep } from "node:path";
import type { Logger } from "pino";
import canonicalize from "canonicalize";
import type { PoolConfig } from "../../config/schema.ts";
import type { Scheduler } from "../../scheduler/index.ts";
import type { AuditEvent } from "../../security/audit/index.ts";
import { wrapAad, type KeyProvider } from "../../security/crypto/index.ts";
import type { AttemptOutcome, AttemptSpec, CommittedArtifact, RunningAttempt } from "../executors/types.ts";
import type { GpuDevice } from "../inventory/types.ts";
import { ApiError } from "../service/api-error.ts";
import { artifactContextOf, logContext } from "../service/sealing.ts";
import type { Assignment, DrainRequest, DrainResponse, FinishedReport, KeyRequest, PollRequest, PollResponse, RegisterRequest, RegisterResponse, StartedReport } from "./protocol.ts";

export interface RegistryOptions {
  readonly pool: PoolConfig;
  readonly scheduler: Scheduler;
  /** The leader's tenure: every assignment carries it. */
  readonly epoch: number;
  readonly leaseMs: number;
  /** Where this control plane mounts the shared storage (sealed artifacts and logs). */
  readonly sharedDir: string;
  readonly keys: KeyProvider;
  readonly logger: Logger;
  readonly audit: (event: AuditEvent) => void;
  /** The array to keep the pool's devices in (filled here, updated as workers join and leave). */
  readonly devices?: GpuDevice[];
  /** Devices came into or left service, or an attempt ended: the loop looks again. */
  readonly onChange: () => void;
}

interface Session {
  readonly workerId: string;
  /** The pool node it serves. */
  readonly node: string;
  /** The node name it reported (its Kubernetes node, or host). */
  readonly reportedNode: string;
  readonly subject: string;
  lastSeen: number;
  alive: boolean;
  /** Going away on purpose: nothing new is placed on its GPUs; it leaves once its attempts have ended. */
  draining: boolean;
  /** Polls answered so far: an attempt handed out in poll n must be listed as held from poll n + 1 on. */
  polls: number;
  readonly gpus: number[];
  readonly queue: Tracked[];
  readonly attempts: Set<Tracked>;
  waiter: ((r: PollResponse) => void) | null;
  waitTimer: NodeJS.Timeout | null;
}

interface Tracked {
  readonly assignment: Assignment;
  readonly session: Session;
  state: "queued" | "sent" | "started" | "ended";
  sentInPoll: number;
  cancelRequested: boolean;
  readonly wrapAllowed: ReadonlySet<string>;
  readonly wrapPrefix: string;
  readonly unwrapAllowed: ReadonlySet<string>;
  started: (handle: RunningAttempt) => void;
  ended: (outcome: AttemptOutcome) => void;
  readonly done: Promise<AttemptOutcome>;
  handle: RunningAttempt | null;
  artifacts: CommittedArtifact[];
}

const ACTOR = "gpufabric-agent";

export class WorkerRegistry {
  /** The pool's devices as the loop and the API see them: each updated from the worker that serves its node. */
  readonly devices: GpuDevice[];
  private readonly sessions = new Map<string, Session>();
  private readonly byNode = new Map<string, Session>();
  private readonly byToken = new Map<string, Tracked>();
  private readonly byAttempt = new Map<string, Tracked>();
  private readonly gpuIndex = new Map<string, number>();
  private readonly nodes: string[];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: RegistryOptions) {
    for (let i = 0; i < o.scheduler.gpuCount; i++) {
      this.gpuIndex.set(o.scheduler.gpuId(i), i);
      // Nothing is in service before a worker says it serves the node.
      o.scheduler.setOnline(i, false);
    }
    this.nodes = [...new Set(o.pool.devices.map((d) => d.node))];
    this.devices = o.devices ?? [];
    this.devices.splice(0, this.devices.length, ...poolDevices(o.pool));
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(o.leaseMs / 10)));
    this.sweeper.unref();
  }

  get epoch(): number {
    return this.o.epoch;
  }

  /** Workers alive now, by pool node. */
  workers(): Array<{ workerId: string; node: string; reportedNode: string; gpus: number; attempts: number; draining: boolean; lastSeenMsAgo: number }> {
    const now = Date.now();
    return [...this.byNode.values()].map((s) => ({
      workerId: s.workerId,
      node: s.node,
      reportedNode: s.reportedNode,
      gpus: s.gpus.length,
      attempts: s.attempts.size,
      draining: s.draining,
      lastSeenMsAgo: now - s.lastSeen,
    }));
  }

  /** The pool node a device belongs to. */
  nodeOf(deviceId: string): string | undefined {
    return this.devices.find((d) => d.id === deviceId)?.node;
  }

  register(subject: string, req: RegisterRequest): RegisterResponse {
    this.assertOpen();
    // A worker that comes back under the same name replaces its former self, whose attempts are gone.
    for (const s of this.byNode.values()) if (s.reportedNode === req.node) this.expire(s, "the worker registered again (it restarted)");
    const node = this.nodes.includes(req.node) && !this.byNode.has(req.node) ? req.node : this.nodes.find((n) => !this.byNode.has(n));
    if (node === undefined) {
      throw new ApiError(409, "pool-full", `every node of pool '${this.o.pool.name}' already has a worker (${this.nodes.length} nodes): add nodes to the pool, or stop a worker`, "node");
    }
    const session: Session = {
      workerId: randomUUID(),
      node,
      reportedNode: req.node,
      subject,
      lastSeen: Date.now(),
      alive: true,
      draining: false,
      polls: 0,
      gpus: [],
      queue: [],
      attempts: new Set(),
      waiter: null,
      waitTimer: null,
    };
    const served: Array<{ index: number; id: string }> = [];
    for (const device of this.o.pool.devices.filter((d) => d.node === node)) {
      const report = req.devices.find((r) => r.index === device.index);
      if (report === undefined) continue;
      if (report.memoryMiB < device.memoryMiB * 0.9) {
        this.o.logger.warn({ node, device: device.id, reportedMiB: report.memoryMiB, declaredMiB: device.memoryMiB }, "a worker's GPU has less memory than the pool declares: it stays out of service");
        continue;
      }
      const gpu = this.gpuIndex.get(device.id)!;
      session.gpus.push(gpu);
      const i = this.devices.findIndex((d) => d.id === device.id);
      const base = { id: device.id, node, index: device.index, memoryMiB: device.memoryMiB, memoryUsedMiB: report.memoryUsedMiB ?? 0, ...(device.migProfile !== undefined && { migProfile: device.migProfile }) };
      // A real GPU without a UUID is a ComfyUI server container's (comfyui.image): only ComfyUI stages run on it.
      this.devices[i] = report.simulated
        ? { ...base, uuid: null, name: `${report.name} (simulated)`, simulated: true }
        : report.uuid === null
          ? { ...base, uuid: null, name: report.name, simulated: false, heldBy: "comfyui" }
          : { ...base, uuid: report.uuid, name: report.name, simulated: false };
      served.push({ index: device.index, id: device.id });
    }
    if (served.length === 0) {
      throw new ApiError(422, "no-usable-gpu", `none of the worker's GPUs matches a device of node '${node}' in pool '${this.o.pool.name}' (indexes ${req.devices.map((d) => d.index).join(", ")})`, "devices");
    }
    this.sessions.set(session.workerId, session);
    this.byNode.set(node, session);
    for (const g of session.gpus) this.o.scheduler.setOnline(g, true);
    this.o.logger.info({ node, reportedNode: req.node, gpus: served.length, workerId: session.workerId, isolation: req.isolation }, "worker joined");
    this.o.audit({
      actor: subject,
      action: "cluster.worker.join",
      object: `node/${node}`,
      outcome: "success",
      data: { reportedNode: req.node, gpus: served.map((s) => s.id), sandbox: req.isolation.sandbox, unsafe: req.isolation.unsafe, epoch: this.o.epoch },
    });
    this.o.onChange();
    return { workerId: session.workerId, epoch: this.o.epoch, leaseMs: this.o.leaseMs, node, devices: served };
  }

  /** A heartbeat that waits (up to `waitMs`) for work to hand out or attempts to stop. */
  poll(subject: string, req: PollRequest): Promise<PollResponse> {
    this.assertOpen();
    const s = this.session(subject, req.workerId);
    s.lastSeen = Date.now();
    const held = new Set(req.running);
    const unknown: string[] = [];
    for (const id of held) {
      const t = this.byAttempt.get(id);
      if (t === undefined || t.session !== s || t.state === "ended") unknown.push(id);
    }
    for (const t of [...s.attempts]) {
      if ((t.state === "sent" || t.state === "started") && t.sentInPoll < s.polls && !held.has(t.assignment.attemptId)) {
        this.end(t, lostOutcome("the worker no longer holds the attempt (it restarted, or never received it)", t.assignment));
      }
    }
    if (req.devices) {
      for (const d of req.devices) {
        const i = this.devices.findIndex((x) => x.node === s.node && x.index === d.index);
        if (i >= 0) this.devices[i] = { ...this.devices[i]!, memoryUsedMiB: d.memoryUsedMiB };
      }
    }
    // Only one poll of a worker waits at a time: an earlier one is answered now.
    this.answer(s, []);
    const pending = () => s.queue.length > 0 || [...s.attempts].some((t) => t.cancelRequested && t.state !== "queued" && held.has(t.assignment.attemptId));
    if (unknown.length > 0 || pending() || req.waitMs === 0) return Promise.resolve(this.respond(s, held, unknown));
    return new Promise<PollResponse>((resolve) => {
      s.waiter = resolve;
      s.waitTimer = setTimeout(() => this.answer(s, unknown, held), req.waitMs);
    });
  }

  started(subject: string, attemptId: string, report: StartedReport): void {
    const t = this.tracked(subject, attemptId, report);
    if (t.state === "started") return;
    if (t.state === "ended") throw new ApiError(409, "stale-attempt", "the attempt already ended", "token");
    t.state = "started";
    t.session.lastSeen = Date.now();
    t.started(this.handleOf(t, report.pid, report.workspace));
  }

  finished(subject: string, attemptId: string, report: FinishedReport): void {
    const t = this.tracked(subject, attemptId, report);
    if (t.state === "ended") return;
    t.session.lastSeen = Date.now();
    const a = t.assignment;
    const expected = ["artifacts", a.runId, a.stageId, String(a.number)].join("/");
    t.artifacts = report.artifacts.map((x) => {
      if (x.path !== `${expected}/${x.name}`) throw new ApiError(400, "invalid-request", `artifact '${x.name}' must lie at ${expected}/${x.name} in the shared storage`, "artifacts");
      return { name: x.name, bytes: x.bytes, sha256: x.sha256, path: join(this.o.sharedDir, ...x.path.split("/")) };
    });
    const o = report.outcome;
    this.end(t, {
      exitCode: o.exitCode,
      signal: o.signal as NodeJS.Signals | null,
      reason: o.reason,
      message: o.message,
      ...(o.peakVramMiB !== undefined && { peakVramMiB: o.peakVramMiB }),
      simulated: o.simulated,
      ...(o.residentModels !== undefined && { residentModels: o.residentModels }),
    });
  }

  /** Wraps or unwraps one data key for an attempt, after checking the object is the attempt's to write or read. */
  async key(subject: string, req: KeyRequest): Promise<{ key: string }> {
    const t = this.byToken.get(req.token);
    if (t === undefined || t.session.subject !== subject || t.session.workerId !== req.workerId || !t.session.alive || t.state === "ended") {
      throw new ApiError(409, "stale-attempt", "no open attempt of this worker holds that token (it ended, or another leader gave it out)", "token");
    }
    const aad = Buffer.from(req.aad, "base64");
    let context: { tenant?: unknown; run?: unknown; objectId?: unknown; keyVersion?: unknown };
    try {
      context = JSON.parse(aad.toString("utf8")) as typeof context;
    } catch {
      throw new ApiError(400, "invalid-request", "aad must be the canonical JSON the envelope encryption binds", "aad");
    }
    const a = t.assignment;
    const objectId = typeof context.objectId === "string" ? context.objectId : "";
    if (context.tenant !== a.tenant || context.run !== a.runId || context.keyVersion !== req.version) {
      throw new ApiError(403, "forbidden", "the key's context names another tenant, run or key version than the attempt's", "aad");
    }
    if (!wrapAad({ tenant: a.tenant, run: a.runId, objectId }, req.version).equals(aad) || canonicalize(context) !== aad.toString("utf8")) {
      throw new ApiError(400, "invalid-request", "aad is not in canonical form", "aad");
    }
    const allowed = req.op === "wrap" ? t.wrapAllowed.has(objectId) || (objectId.startsWith(t.wrapPrefix) && !objectId.slice(t.wrapPrefix.length).includes("/")) : t.unwrapAllowed.has(objectId);
    if (!allowed) {
      this.o.audit({ actor: subject, tenant: a.tenant, action: `cluster.key.${req.op}`, object: `run/${a.runId}/${objectId.slice(0, 300)}`, outcome: "denied", data: { attemptId: a.attemptId } });
      throw new ApiError(403, "forbidden", `attempt ${a.attemptId} may not ${req.op} the key of '${objectId.slice(0, 200)}'`, "aad");
    }
    const key = Buffer.from(req.key, "base64");
    const out = req.op === "wrap" ? await this.o.keys.wrap(key, req.version, aad) : await this.o.keys.unwrap(key, req.version, aad);
    return { key: Buffer.from(out).toString("base64") };
  }

  /**
   * The open attempt of this worker that holds `token`, checked as a key request is (same worker, alive,
   * not ended): only such an attempt's live events are relayed. Undefined otherwise.
   */
  openAttempt(subject: string, workerId: string, token: string): Assignment | undefined {
    const t = this.byToken.get(token);
    if (t === undefined || t.session.subject !== subject || t.session.workerId !== workerId || !t.session.alive || t.state === "ended") return undefined;
    return t.assignment;
  }

  /** Whether `workerId` is a live worker of this registry, registered with this subject's token. */
  isLive(subject: string, workerId: string): boolean {
    const s = this.sessions.get(workerId);
    return s !== undefined && s.alive && s.subject === subject;
  }

  /** Hands an attempt to the worker serving its GPUs' node; resolves once the worker started it (or it ended first). */
  assign(spec: AttemptSpec & { readonly runInputsValue?: Readonly<Record<string, unknown>> }): Promise<RunningAttempt> {
    const node = spec.gpus.length > 0 ? this.nodeOf(spec.gpus[0]!.id) : this.anyNode();
    const s = node === undefined ? undefined : this.byNode.get(node);
    const inputs = spec.inputs.flatMap((i) => ("stageId" in i ? i.artifacts.map((x) => ({ stageId: i.stageId, name: x.name, path: this.sharedRelative(x.path) })) : []));
    const token = randomBytes(24).toString("base64url");
    return this.o.keys.currentVersion().then(
      (keyVersion) =>
        new Promise<RunningAttempt>((resolveStart) => {
          let ended: (o: AttemptOutcome) => void = () => undefined;
          const done = new Promise<AttemptOutcome>((resolve) => (ended = resolve));
          const assignment: Assignment = {
            attemptId: spec.attemptId,
            token,
            epoch: this.o.epoch,
            runId: spec.runId,
            tenant: spec.tenant ?? "",
            stageId: spec.stageId,
            number: spec.number,
            stage: spec.stage,
            gpus: spec.gpus.map((g) => {
              const d = this.devices.find((x) => x.id === g.id);
              return { id: g.id, index: d?.index ?? 0, uuid: d?.uuid ?? null, simulated: d?.simulated ?? true };
            }),
            inputs,
            runInputs: spec.runInputsValue ?? null,
            ...(spec.comfy !== undefined && { comfy: spec.comfy }),
            ...(spec.trace !== undefined && { trace: spec.trace }),
            keyVersion,
          };
          if (s === undefined || !s.alive) {
            // Placed before the loss was heard of: it ends at once, interrupted, and runs again elsewhere.
            const lost = lostOutcome(`no worker serves node '${node ?? "?"}' now`, assignment);
            resolveStart({ attemptId: spec.attemptId, pid: null, workspace: null, done: Promise.resolve(lost), cancel: () => undefined, commitOutputs: async () => [] });
            return;
          }
          const tracked: Tracked = {
            assignment,
            session: s,
            state: "queued",
            sentInPoll: -1,
            cancelRequested: false,
            wrapAllowed: new Set([`${spec.number}.stdout.log`, `${spec.number}.stderr.log`].map((f) => logContext(assignment.tenant, spec.runId, spec.stageId, f).objectId)),
            wrapPrefix: `artifact/${spec.stageId}/${spec.number}/`,
            unwrapAllowed: new Set(inputs.map((i) => artifactContextOf(join(this.o.sharedDir, "artifacts"), assignment.tenant, join(this.o.sharedDir, i.path)).objectId)),
            started: (handle) => resolveStart(handle),
            ended: (o) => ended(o),
            done,
            handle: null,
            artifacts: [],
          };
          tracked.started = (handle) => {
            tracked.handle = handle;
            resolveStart(handle);
          };
          this.byToken.set(token, tracked);
          this.byAttempt.set(spec.attemptId, tracked);
          s.attempts.add(tracked);
          s.queue.push(tracked);
          this.answer(s, []);
        })
    );
  }

  /** Stops handing out work: every waiting poll is answered, the sweeper stops. Attempts stay with their workers. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const s of this.sessions.values()) {
      this.answer(s, []);
      // Ended here and recorded by no one: the next leader closes them as interrupted, and the workers,
      // finding them unknown there, stop them.
      for (const t of [...s.attempts]) this.end(t, lostOutcome("this control plane stopped leading", t.assignment));
    }
  }

  /**
   * A worker drains (`draining`): its GPUs leave placement at once (the scheduler's setOnline(false), which
   * leaves the stages running there to end as usual), its attempts stay its own. Or it leaves (`left`), once
   * it holds no attempt: it is forgotten now, without waiting out its lease, and nothing ends interrupted.
   */
  drain(subject: string, req: DrainRequest): DrainResponse {
    this.assertOpen();
    const s = this.session(subject, req.workerId);
    s.lastSeen = Date.now();
    if (req.phase === "draining") {
      if (!s.draining) {
        s.draining = true;
        for (const g of s.gpus) this.o.scheduler.setOnline(g, false);
        this.o.logger.info({ node: s.node, reportedNode: s.reportedNode, attempts: s.attempts.size }, "worker draining: nothing new is placed on it; its running stages finish");
        this.o.audit({ actor: s.subject, action: "cluster.worker.drain", object: `node/${s.node}`, outcome: "success", data: { reportedNode: s.reportedNode, attempts: s.attempts.size } });
        this.o.onChange();
      }
      return { attempts: s.attempts.size };
    }
    if (s.attempts.size > 0) {
      throw new ApiError(409, "attempts-held", `the worker still holds ${s.attempts.size} attempt(s): report them finished before leaving`, "phase");
    }
    s.alive = false;
    if (this.byNode.get(s.node) === s) this.byNode.delete(s.node);
    this.sessions.delete(s.workerId);
    for (const g of s.gpus) this.o.scheduler.setOnline(g, false);
    this.answer(s, []);
    this.o.logger.info({ node: s.node, reportedNode: s.reportedNode }, "worker left after draining");
    this.o.audit({ actor: s.subject, action: "cluster.worker.left", object: `node/${s.node}`, outcome: "success", data: { reportedNode: s.reportedNode } });
    this.o.onChange();
    return { attempts: 0 };
  }

  /** Workers that missed their lease are lost. */
  sweep(now = Date.now()): void {
    for (const s of this.byNode.values()) {
      if (now - s.lastSeen > this.o.leaseMs) this.expire(s, `its heartbeat lease of ${this.o.leaseMs} ms expired`);
    }
  }

  private expire(s: Session, why: string): void {
    if (!s.alive) return;
    s.alive = false;
    if (this.byNode.get(s.node) === s) this.byNode.delete(s.node);
    this.sessions.delete(s.workerId);
    for (const g of s.gpus) this.o.scheduler.setOnline(g, false);
    this.answer(s, []);
    const lost = [...s.attempts];
    this.o.logger.warn({ node: s.node, reportedNode: s.reportedNode, attempts: lost.length }, `worker lost: ${why}; its attempts run again elsewhere`);
    this.o.audit({ actor: ACTOR, action: "cluster.worker.lost", object: `node/${s.node}`, outcome: "success", data: { reportedNode: s.reportedNode, why, attempts: lost.map((t) => t.assignment.attemptId) } });
    for (const t of lost) this.end(t, lostOutcome(`the worker on node '${s.node}' was lost (${why})`, t.assignment));
    this.o.onChange();
  }

  private end(t: Tracked, outcome: AttemptOutcome): void {
    if (t.state === "ended") return;
    const wasStarted = t.state === "started";
    t.state = "ended";
    t.session.attempts.delete(t);
    const q = t.session.queue.indexOf(t);
    if (q >= 0) t.session.queue.splice(q, 1);
    this.byToken.delete(t.assignment.token);
    this.byAttempt.delete(t.assignment.attemptId);
    if (!wasStarted) t.started(this.handleOf(t, null, null));
    t.ended(outcome);
  }

  private handleOf(t: Tracked, pid: number | null, workspace: string | null): RunningAttempt {
    return {
      attemptId: t.assignment.attemptId,
      pid,
      workspace,
      done: t.done,
      cancel: () => this.cancel(t),
      commitOutputs: async () => t.artifacts,
    };
  }

  private cancel(t: Tracked): void {
    if (t.state === "ended") return;
    if (t.state === "queued") {
      this.end(t, { exitCode: null, signal: null, reason: "cancelled", message: "stopped before a worker took it", simulated: true });
      return;
    }
    t.cancelRequested = true;
    this.answer(t.session, []);
  }

  /** Answers the worker's waiting poll, if any, with what there is. */
  private answer(s: Session, unknown: string[], held?: ReadonlySet<string>): void {
    const waiter = s.waiter;
    if (waiter === null) return;
    s.waiter = null;
    if (s.waitTimer) clearTimeout(s.waitTimer);
    s.waitTimer = null;
    waiter(this.respond(s, held, unknown));
  }

  private respond(s: Session, held: ReadonlySet<string> | undefined, unknown: readonly string[]): PollResponse {
    const assignments = s.alive ? s.queue.splice(0) : [];
    for (const t of assignments) {
      t.state = "sent";
      t.sentInPoll = s.polls;
    }
    s.polls++;
    const cancel = [...unknown];
    for (const t of s.attempts) if (t.cancelRequested && t.state !== "queued" && (held === undefined || held.has(t.assignment.attemptId))) cancel.push(t.assignment.attemptId);
    return { epoch: this.o.epoch, assignments: assignments.map((t) => t.assignment), cancel };
  }

  private session(subject: string, workerId: string): Session {
    const s = this.sessions.get(workerId);
    if (s === undefined || !s.alive || s.subject !== subject) {
      throw new ApiError(410, "unknown-worker", "this leader does not know the worker (it was lost, or the leader changed): register again", "workerId");
    }
    return s;
  }

  private tracked(subject: string, attemptId: string, report: { workerId: string; token: string }): Tracked {
    const t = this.byToken.get(report.token);
    if (t === undefined || t.assignment.attemptId !== attemptId || t.session.workerId !== report.workerId || t.session.subject !== subject) {
      throw new ApiError(409, "stale-attempt", "no open attempt of this worker holds that token (it ended, or another leader gave it out): stop it and drop its outputs", "token");
    }
    return t;
  }

  private sharedRelative(path: string): string {
    const rel = relative(this.o.sharedDir, path);
    if (rel.startsWith("..") || rel.startsWith(sep) || rel === "") throw new Error(`${path} is not in the shared storage ${this.o.sharedDir}`);
    return rel.split(sep).join("/");
  }

  private anyNode(): string | undefined {
    return this.byNode.keys().next().value;
  }

  private assertOpen(): void {
    if (this.closed) throw new ApiError(503, "not-leader", "this control plane is stepping down: ask the leader");
  }
}

/** The pool's devices as declared, before any worker serves them. */
export function poolDevices(pool: PoolConfig): GpuDevice[] {
  return pool.devices.map((d) => ({
    id: d.id,
    uuid: null,
    node: d.node,
    index: d.index,
    name: `${pool.gpu.model} (no worker)`,
    memoryMiB: d.memoryMiB,
    memoryUsedMiB: 0,
    ...(d.migProfile !== undefined && { migProfile: d.migProfile }),
    simulated: true as const,
  }));
}

function lostOutcome(why: string, a: Assignment): AttemptOutcome {
  const simulated = a.gpus.every((g) => g.simulated);
  return { exitCode: null, signal: null, reason: "interrupted", message: why, simulated };
}
