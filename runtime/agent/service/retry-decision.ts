/**
 * Whether, and when, a failed stage is tried again: its retry policy (retry.attempts bounded by the
 * agent's limit, retry.backoffSeconds, retry.nonRetryableExitCodes) applied to what the store recorded.
 */
import { retryDelaySeconds, retryPolicyOf, type Stage } from "../../graph/index.ts";
import type { AttemptRecord } from "../store/types.ts";

/** Why a preempted attempt failed: it is retried at once, and not counted against retry.attempts. */
export const PREEMPTED_REASON = "preempted: stopped so an interactive stage could start";

export interface RetryDecision {
  readonly retry: boolean;
  /** Seconds to wait before the next attempt (0 without a retry). */
  readonly delayS: number;
  /** Failed attempts counted against retry.attempts, this one included. */
  readonly failures: number;
  /** Why the stage is not retried, for its attempt's reason (null when it is). */
  readonly final: string | null;
}

/**
 * Failed attempts of a stage that count against its retry.attempts: not those stopped by preemption
 * (interrupted ones, of a lost node or a restart, have their own status and never count either).
 */
export function countedFailures(attempts: readonly AttemptRecord[], stageId: string, except?: string | null): number {
  let n = 0;
  for (const a of attempts) if (a.stageId === stageId && a.id !== except && a.status === "failed" && a.reason?.startsWith(PREEMPTED_REASON) !== true) n++;
  return n;
}

/**
 * The decision after a failed attempt. `earlier`: the stage's counted failures before this one.
 * `maxAttempts`: the agent's bound on every stage's retry.attempts.
 */
export function decideRetry(stage: Stage, earlier: number, exitCode: number | null | undefined, maxAttempts: number, random: () => number = Math.random): RetryDecision {
  const policy = retryPolicyOf(stage);
  const failures = earlier + 1;
  const limit = Math.min(policy.attempts, maxAttempts);
  if (exitCode != null && policy.nonRetryableExitCodes.includes(exitCode)) {
    return { retry: false, delayS: 0, failures, final: `not retried: exit code ${exitCode} is listed in retry.nonRetryableExitCodes` };
  }
  if (failures >= limit) return { retry: false, delayS: 0, failures, final: `not retried: ${failures} of ${limit} attempt(s) failed (retry.attempts)` };
  return { retry: true, delayS: retryDelaySeconds(policy, failures, random), failures, final: null };
}

/**
 * The decision after a failure before any attempt was opened (the store refused the placement): no
 * attempt is recorded to fail the run with, so the stage is retried, after the first backoff.
 */
export function retryUncounted(stage: Stage, random: () => number = Math.random): RetryDecision {
  return { retry: true, delayS: retryDelaySeconds(retryPolicyOf(stage), 1, random), failures: 0, final: null };
}

/**
 * When a stage of a recovered run may start again: after a failure before the restart, the backoff
 * it was owed counts from when that attempt ended, so only the remaining time is waited (the jitter
 * is drawn again). Null when nothing is owed (no failure counted, or its last attempt did not fail).
 */
export function resumedNotBeforeMs(stage: Stage, attempts: readonly AttemptRecord[], random: () => number = Math.random): number | null {
  let last: AttemptRecord | undefined;
  for (const a of attempts) if (a.stageId === stage.id && (last === undefined || a.number > last.number)) last = a;
  if (last === undefined || last.status !== "failed" || last.finishedAt === null || last.reason?.startsWith(PREEMPTED_REASON) === true) return null;
  const failures = countedFailures(attempts, stage.id);
  const delayS = retryDelaySeconds(retryPolicyOf(stage), failures, random);
  return delayS > 0 ? Date.parse(last.finishedAt) + delayS * 1000 : null;
}

/** One-shot timers kept until they fire, so that all can be cleared when the loop stops. */
export class WakeTimers {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Calls `fn` at `atMs` (epoch ms), a few ms late rather than early: the scheduler places a stage only from its not-before time. */
  at(atMs: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, Math.max(0, atMs - Date.now()) + 5);
    timer.unref();
    this.timers.add(timer);
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
