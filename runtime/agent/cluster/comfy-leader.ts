/**
 * The leader's side of its workers' ComfyUI servers: their live events (forwarded by each worker, see
 * comfy-forward.ts) re-emitted on a relay the API's `/comfyui/ws` hub listens to, and what their servers
 * offer (each worker's report) answered as one introspection, the intersection over the live workers'
 * reports, for `/comfyui/object_info`, `/models` and the checks of `POST /comfyui/prompt`.
 *
 * A control plane that does not lead has no registry: it relays nothing (workers talk to the leader only)
 * and its introspection answers null, so its `/object_info` falls back to the planner's table and its
 * `POST /prompt` checks no models; the leader checks them again before a stage is dispatched.
 */
import type { Logger } from "pino";
import { ComfyRelay, type ComfyIntrospection } from "../executors/comfyui/contract.ts";
import { ApiError } from "../service/api-error.ts";
import type { ComfyEvents, ComfyIntrospectionReport } from "./protocol.ts";
import type { WorkerRegistry } from "./registry.ts";

interface Report {
  readonly hash: string;
  readonly objectInfo: Readonly<Record<string, unknown>> | null;
  readonly models: Readonly<Record<string, readonly string[]>> | null;
}

export class ClusterComfy {
  /** Live events of the workers' attempts, as the workers' own relays emitted them. */
  readonly relay = new ComfyRelay();
  /** By worker id; a report of a worker the registry no longer knows is ignored (and forgotten on the next read). */
  private readonly reports = new Map<string, Report>();
  /** The last intersection, with the report hashes it was made of. */
  private merged: { key: string; objectInfo: Record<string, unknown> | null; models: Record<string, readonly string[]> | null } | undefined;
  /** Events refused (no open attempt of the sender holds the token) and dropped by the workers, for the logs. */
  refused = 0;
  droppedByWorkers = 0;
  private warnedAt = 0;

  constructor(
    private readonly registry: () => WorkerRegistry | undefined,
    private readonly logger: Logger
  ) {}

  /** Re-emits a worker's batch; events of attempts that are not the worker's open ones are refused, one by one. */
  events(registry: WorkerRegistry, subject: string, body: ComfyEvents): { accepted: number; refused: number } {
    if (!registry.isLive(subject, body.workerId)) {
      throw new ApiError(410, "unknown-worker", "this leader does not know the worker (it was lost, or the leader changed): register again", "workerId");
    }
    let accepted = 0;
    let refused = 0;
    for (const e of body.events) {
      const a = registry.openAttempt(subject, body.workerId, e.token);
      if (a === undefined || a.attemptId !== e.attemptId) {
        refused++;
        continue;
      }
      accepted++;
      if (e.kind === "message") this.relay.message({ runId: a.runId, stageId: a.stageId, attemptId: a.attemptId, type: e.type, data: e.data });
      else this.relay.preview({ runId: a.runId, stageId: a.stageId, eventType: e.eventType, payload: Buffer.from(e.payload, "base64") });
    }
    this.refused += refused;
    this.droppedByWorkers += body.dropped;
    if ((refused > 0 || body.dropped > 0) && Date.now() - this.warnedAt > 10_000) {
      this.warnedAt = Date.now();
      this.logger.warn({ workerId: body.workerId, refused: this.refused, droppedByWorkers: this.droppedByWorkers }, "some ComfyUI live events of workers were refused (stale attempts) or dropped on the way");
    }
    return { accepted, refused };
  }

  /** Keeps a worker's report of what its servers offer. */
  report(registry: WorkerRegistry, subject: string, body: ComfyIntrospectionReport): { hash: string } {
    if (!registry.isLive(subject, body.workerId)) {
      throw new ApiError(410, "unknown-worker", "this leader does not know the worker (it was lost, or the leader changed): register again", "workerId");
    }
    this.reports.set(body.workerId, { hash: body.hash, objectInfo: body.objectInfo, models: body.models });
    return { hash: body.hash };
  }

  /** What every live worker that reported offers; null while none has (or this replica does not lead). */
  readonly introspection: ComfyIntrospection = {
    objectInfo: async () => this.current()?.objectInfo ?? null,
    models: async () => this.current()?.models ?? null,
  };

  private current(): { objectInfo: Record<string, unknown> | null; models: Record<string, readonly string[]> | null } | undefined {
    const registry = this.registry();
    if (registry === undefined) {
      this.reports.clear();
      this.merged = undefined;
      return undefined;
    }
    const live = new Set(registry.workers().map((w) => w.workerId));
    for (const id of this.reports.keys()) if (!live.has(id)) this.reports.delete(id);
    const reports = [...this.reports.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, r]) => r);
    const key = reports.map((r) => r.hash).join(",");
    if (this.merged?.key === key) return this.merged;
    this.merged = { key, objectInfo: intersectObjectInfo(reports.flatMap((r) => (r.objectInfo === null ? [] : [r.objectInfo]))), models: intersectModels(reports.flatMap((r) => (r.models === null ? [] : [r.models]))) };
    return this.merged;
  }
}

/** Node classes every report lists (a stage may land on any worker), as the first report describes them. */
export function intersectObjectInfo(infos: ReadonlyArray<Readonly<Record<string, unknown>>>): Record<string, unknown> | null {
  if (infos.length === 0) return null;
  const [first, ...rest] = infos;
  return Object.fromEntries(Object.entries(first!).filter(([name]) => rest.every((i) => Object.hasOwn(i, name))));
}

/** Model files every report lists, by folder. */
export function intersectModels(all: ReadonlyArray<Readonly<Record<string, readonly string[]>>>): Record<string, readonly string[]> | null {
  if (all.length === 0) return null;
  const [first, ...rest] = all;
  const out: Record<string, readonly string[]> = {};
  for (const [folder, files] of Object.entries(first!)) {
    if (!rest.every((m) => Object.hasOwn(m, folder))) continue;
    const sets = rest.map((m) => new Set(m[folder]));
    out[folder] = files.filter((f) => sets.every((s) => s.has(f)));
  }
  return out;
}
