/**
 * How a failed stage is tried again: how many attempts it gets, how long it waits between them, and
 * which exit codes mean trying again is pointless. Declared per stage (or per workflow) in the native
 * format; ComfyUI stages and stages stored before retries were declarable get DEFAULT_RETRY.
 */

export interface RetryPolicy {
  /**
   * Attempts the stage gets before it (and its run) fails: 1 means no retry. Attempts ended by a lost
   * node or by preemption are not counted.
   * @default 3
   */
  readonly attempts: number;
  /**
   * Seconds waited before the second attempt; each further wait doubles, with jitter added on top
   * (see retryDelaySeconds). The stage holds no GPU while it waits. 0 retries at once.
   * @default 10
   */
  readonly backoffSeconds: number;
  /**
   * Exit codes that fail the stage (and its run) at once, without a retry: for errors a new attempt
   * cannot fix, such as bad input.
   * @default []
   */
  readonly nonRetryableExitCodes: readonly number[];
}

/** Bounds of the declarable fields, and the most attempts the agent gives any stage. */
export const RETRY_LIMITS = {
  maxAttempts: 10,
  maxBackoffSeconds: 3600,
  /** No single wait is longer than this before jitter (the doubling stops there). */
  maxWaitSeconds: 3600,
} as const;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ attempts: 3, backoffSeconds: 10, nonRetryableExitCodes: Object.freeze([]) as readonly number[] });

/** The stage's policy, or the default for stages that declare none. */
export function retryPolicyOf(stage: { readonly retry?: RetryPolicy }): RetryPolicy {
  return stage.retry ?? DEFAULT_RETRY;
}

/**
 * Seconds to wait after the `failures`-th counted failure, before the next attempt:
 * backoffSeconds × 2^(failures−1), capped at maxWaitSeconds, times (1 + random/2).
 *
 * Why this jitter: jitter spreads out the retries of stages that failed together (a dependency that
 * was down for all of them), so they do not all come back at the same instant. The common "full
 * jitter" (a wait anywhere in [0, base]) spreads best but may retry at once; here the jitter is added
 * on top instead (up to +50%), so backoffSeconds stays a floor a user can rely on (e.g. a rate-limited
 * service that asks for at least N seconds), at the cost of a little spread.
 */
export function retryDelaySeconds(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  if (policy.backoffSeconds <= 0) return 0;
  const base = Math.min(RETRY_LIMITS.maxWaitSeconds, policy.backoffSeconds * 2 ** Math.max(0, failures - 1));
  return base * (1 + random() / 2);
}
