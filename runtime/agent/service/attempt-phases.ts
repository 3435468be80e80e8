/**
 * When each attempt of a run went through its phases, from the run's events: what a timeline draws as
 * queue wait (queuedAt → placedAt), model load (loadStartedAt → runningAt), execution (runningAt →
 * sealingAt) and sealing (sealingAt → finishedAt). Pure: the store's records in, ISO times (or null for a
 * phase not reached) out.
 *
 * - queuedAt: when the stage last became ready before the attempt was placed (a `stage.ready` event, the
 *   previous attempt's `stage.retrying` / `stage.interrupted`, or the run's acceptance for a stage ready
 *   from the start).
 * - loadStartedAt: the placement: the agent starts loading the stage (and its models) as soon as it has
 *   its GPUs, and no event marks the load finer than that.
 */
import type { AttemptRecord, EventRecord } from "../store/types.ts";

export interface AttemptPhases {
  readonly queuedAt: string | null;
  readonly placedAt: string | null;
  readonly loadStartedAt: string | null;
  readonly runningAt: string | null;
  readonly sealingAt: string | null;
  readonly finishedAt: string | null;
}

/** Events that put a stage (back) in the queue. */
const REQUEUED = new Set(["stage.ready", "stage.retrying", "stage.interrupted"]);

function attemptOf(e: EventRecord): number | undefined {
  const n = e.data.attempt;
  return typeof n === "number" ? n : undefined;
}

/** Phases of every attempt, by attempt id. `runAcceptedAt`: when the run was accepted (its createdAt). */
export function attemptPhases(attempts: readonly AttemptRecord[], events: readonly EventRecord[], runAcceptedAt: string): Map<string, AttemptPhases> {
  // Per stage, its events in order (events carry a store-wide monotonic id).
  const byStage = new Map<string, EventRecord[]>();
  let accepted = runAcceptedAt;
  for (const e of [...events].sort((a, b) => a.id - b.id)) {
    if (e.type === "run.accepted") accepted = e.at;
    if (e.stageId === null) continue;
    const list = byStage.get(e.stageId) ?? [];
    list.push(e);
    byStage.set(e.stageId, list);
  }
  const phases = new Map<string, AttemptPhases>();
  for (const a of attempts) {
    const stageEvents = byStage.get(a.stageId) ?? [];
    const at = (type: string) => stageEvents.find((e) => e.type === type && attemptOf(e) === a.number)?.at ?? null;
    const placedEvent = stageEvents.find((e) => e.type === "stage.placed" && attemptOf(e) === a.number);
    const placedAt = placedEvent?.at ?? a.placedAt;
    // The last requeue before this attempt's placement.
    let queuedAt: string | null = null;
    for (const e of stageEvents) {
      if (placedEvent !== undefined && e.id >= placedEvent.id) break;
      if (placedEvent === undefined && e.at > placedAt) break;
      if (REQUEUED.has(e.type) && (e.type === "stage.ready" || (attemptOf(e) ?? 0) < a.number)) queuedAt = e.at;
    }
    queuedAt ??= a.number === 1 ? accepted : null;
    const runningAt = at("stage.running") ?? a.startedAt;
    const sealingAt = at("stage.sealing");
    const finishedAt = a.finishedAt;
    phases.set(a.id, {
      queuedAt: queuedAt !== null && queuedAt > placedAt ? placedAt : queuedAt,
      placedAt,
      loadStartedAt: placedAt,
      runningAt,
      sealingAt,
      finishedAt,
    });
  }
  return phases;
}
