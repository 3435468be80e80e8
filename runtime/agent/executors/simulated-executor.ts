/**
 * Stands in for stages nothing can run here (no command, e.g. an imported ComfyUI prompt while no
 * ComfyUI worker is configured): waits the cost model's estimated duration, scaled for demos, and
 * says `simulated: true` in its outcome so that every status built on it is labelled.
 */
import type { AttemptOutcome, AttemptSpec, CommittedArtifact, Executor, RunningAttempt } from "./types.ts";

export interface SimulatedExecutorOptions {
  /** Multiplies estimated durations: 1 in production, e.g. 0.01 so a local demo finishes in seconds. */
  readonly timeScale?: number;
  /** Seconds for a stage without an estimate (default 1). */
  readonly defaultDurationS?: number;
}

export class SimulatedExecutor implements Executor {
  readonly kind = "simulated" as const;
  private readonly timeScale: number;
  private readonly defaultDurationS: number;

  constructor(options: SimulatedExecutorOptions = {}) {
    this.timeScale = options.timeScale ?? 1;
    this.defaultDurationS = options.defaultDurationS ?? 1;
    if (!(this.timeScale >= 0) || !Number.isFinite(this.timeScale)) {
      throw new RangeError(`timeScale must be a finite number of 0 or more (got ${options.timeScale}): e.g. 1, or 0.01 for a quick demo`);
    }
    if (!(this.defaultDurationS >= 0) || !Number.isFinite(this.defaultDurationS)) {
      throw new RangeError(`defaultDurationS must be a finite number of 0 or more seconds (got ${options.defaultDurationS})`);
    }
  }

  /** Seconds the attempt will take: the stage's estimate (work plus model load), scaled. */
  durationS(attempt: AttemptSpec): number {
    const estimate = attempt.stage.estimate;
    const seconds = estimate ? estimate.durationS + estimate.modelLoadS : this.defaultDurationS;
    return seconds * this.timeScale;
  }

  async start(attempt: AttemptSpec): Promise<RunningAttempt> {
    const seconds = this.durationS(attempt);
    let settle!: (outcome: AttemptOutcome) => void;
    const done = new Promise<AttemptOutcome>((resolve) => (settle = resolve));
    let ended = false;
    const end = (outcome: AttemptOutcome) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      settle(outcome);
    };
    const timer = setTimeout(
      () =>
        end({
          exitCode: 0,
          signal: null,
          reason: "completed",
          message: `simulated: waited the estimated ${seconds.toFixed(3)} s, no real work ran`,
          simulated: true,
        }),
      seconds * 1000
    );
    return {
      attemptId: attempt.attemptId,
      pid: null,
      workspace: null,
      done,
      cancel: () => end({ exitCode: null, signal: null, reason: "cancelled", message: "simulated: stopped, the run was cancelled", simulated: true }),
      // A simulated stage produces nothing: it commits no artifacts rather than invent any.
      commitOutputs: async (): Promise<CommittedArtifact[]> => {
        const outcome = await done;
        if (outcome.reason !== "completed") throw new Error(`simulated attempt of stage '${attempt.stageId}' was ${outcome.reason}: nothing to commit`);
        return [];
      },
    };
  }
}
