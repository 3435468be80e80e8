/**
 * The agent loop: takes the scheduler's decisions with the real clock and carries them out, making
 * every transition durable in the store before acting on it. placed (store) → executor started →
 * running (store) → process ends → sealing (store) → outputs committed → succeeded (store) → the
 * scheduler is told. Failures are retried as new attempts in fresh workspaces, as the stage's retry
 * policy says (retry-decision.ts): up to retry.attempts, after a backoff during which the stage holds no GPU.
 *
 * The loop wakes on submissions and completions; a slow timer only lifts aged work.
 */
import { EventEmitter } from "node:events";
import { rm } from "node:fs/promises";
import type { Stage, WorkflowGraph } from "../../graph/index.ts";
import { observeStage } from "../../graph/index.ts";
import { runSpecFromStages } from "../../scheduler/from-graph.ts";
import type { Kill, Placement, WaitReason } from "../../scheduler/index.ts";
import { executorFor, stopOrphanedAttempt, type AttemptOutcome, type RunningAttempt } from "../executors/index.ts";
import type { AttemptInput } from "../executors/types.ts";
import type { GpuDevice } from "../inventory/types.ts";
import { TransitionError, type RunRecord, type StageRecord } from "../store/types.ts";
import type { ActiveRun, LoopOptions, RunningStage } from "./loop-types.ts";
import { restoreStageRuns } from "./sealed-fields.ts";
import type { OpenedInputs } from "./sealing.ts";
import { PREEMPTED_REASON, WakeTimers, countedFailures, decideRetry, resumedNotBeforeMs, retryUncounted, type RetryDecision } from "./retry-decision.ts";
import { resolveStageCommand } from "./stage-command.ts";

export type { ActiveRun, LoopObserver, LoopOptions, RunningStage } from "./loop-types.ts";

export class AgentLoop {
  /** Emits `run` with a run id whenever something of that run changed. */
  readonly changes = new EventEmitter();
  private readonly active = new Map<string, ActiveRun>();
  private readonly running = new Map<string, RunningStage>();
  /** Runs the store has closed (cancelled, or failed for good) while the scheduler may still hold stages of them. */
  private readonly abandoned = new Set<string>();
  /** When each stage became ready to place, for dispatch latency. */
  private readonly readySince = new Map<string, number>();
  private readonly lastWait = new Map<string, WaitReason>();
  /** Preempted attempts whose failure is not yet in the store: the stage's next placement waits for it. */
  private readonly settling = new Map<string, Promise<void>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Wakes the loop when a stage's backoff ends. */
  private readonly backoffTimers = new WakeTimers();
  private wakeQueued = false;
  private graphOf: ((run: RunRecord, document?: unknown) => Promise<WorkflowGraph | undefined>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: LoopOptions) {
    this.changes.setMaxListeners(0);
  }

  get activeRunCount(): number {
    return this.active.size;
  }

  runningStages(): RunningStage[] {
    return [...this.running.values()];
  }

  /**
   * Recovery on start: closes attempts left open by a previous agent (and stops their processes),
   * then hands the scheduler every unfinished run with its succeeded stages left out.
   */
  async start(graphOf: (run: RunRecord, document?: unknown) => Promise<WorkflowGraph | undefined>): Promise<{ interrupted: number; resumedRuns: number }> {
    const report = await this.o.store.recover();
    for (const attempt of report.interrupted) {
      const outcome = stopOrphanedAttempt({ pid: attempt.pid, runId: attempt.runId, stageId: attempt.stageId, number: attempt.number });
      this.o.logger.info(
        { runId: attempt.runId, stageId: attempt.stageId, attempt: attempt.number, process: outcome },
        "interrupted attempt closed; its stage runs again"
      );
    }
    this.graphOf = graphOf;
    const runs = await this.o.store.activeRuns();
    for (const { run, stages } of runs) await this.resume(run, stages);
    this.timer = setInterval(() => this.wake(), this.o.agingTickMs ?? 1000);
    this.timer.unref();
    this.wake();
    return { interrupted: report.interrupted.length, resumedRuns: this.active.size };
  }

  /**
   * Takes up a run the store holds (recovered at start, or accepted by another control plane of a
   * cluster): its succeeded stages stay done, the others are handed to the scheduler.
   */
  async resume(run: RunRecord, stages: readonly StageRecord[], document?: unknown): Promise<void> {
    if (this.active.has(run.id)) return;
    const done = new Set(stages.filter((s) => s.status === "succeeded").map((s) => s.stageId));
    // Every need is kept: the succeeded ones are left out only of what the scheduler waits for (accept).
    const left = stages.filter((s) => s.status !== "succeeded" && s.status !== "failed" && s.status !== "cancelled").map((s) => s.spec);
    if (left.length === 0) return;
    const graph = await (this.graphOf ?? (async () => undefined))(run, document).catch((err: unknown) => {
      this.o.logger.error({ err, runId: run.id }, "the run's document could not be opened");
      return undefined;
    });
    const runnable = restoreStageRuns(left, graph, this.o.modelTags);
    if (runnable === undefined) {
      // Without its document the stages' commands are unknown: running a placeholder would be worse than stopping.
      this.o.logger.error({ runId: run.id }, "the run's document could not be opened to restore its stage commands; the run is cancelled");
      await this.o.store.cancelRun(run.tenant, run.id).catch(() => undefined);
      return;
    }
    // A stage whose last attempt failed before the restart waits for what is left of its backoff. Its
    // attempts are read before the run is accepted: the hold must be in place before the loop's next
    // tick, which an await between accepting and holding would let place the stage at once.
    const retried = runnable.filter((s) => stages.some((r) => r.stageId === s.id && r.status === "ready" && r.attempts > 0));
    const detail = retried.length > 0 ? await this.o.store.getRun(run.tenant, run.id).catch(() => undefined) : undefined;
    if (this.active.has(run.id)) return;
    this.accept(run, runnable, graph, Date.now(), done);
    if (!this.active.has(run.id)) return;
    for (const stage of detail === undefined ? [] : retried) {
      const notBeforeMs = resumedNotBeforeMs(stage, detail!.attempts);
      if (notBeforeMs !== null && this.o.scheduler.holdUntil(run.id, stage.id, notBeforeMs / 1000, Date.now() / 1000)) this.backoffUntil(run.id, stage.id, notBeforeMs);
    }
  }

  /** Whether the loop holds the run (accepted, not yet forgotten). */
  holds(runId: string): boolean {
    return this.active.has(runId);
  }

  /** Ids of the runs the loop holds. */
  heldRunIds(): string[] {
    return [...this.active.keys()];
  }

  /**
   * A run the store closed without this loop (cancelled through another control plane of a cluster):
   * its queued stages leave the scheduler, its running ones are stopped.
   */
  closedElsewhere(runId: string): void {
    if (!this.active.has(runId) || this.abandoned.has(runId)) return;
    this.stopRun(runId);
  }

  /** After the store closed a run: its queued stages leave the scheduler now; running ones are released as they stop. */
  private stopRun(runId: string): void {
    this.abandoned.add(runId);
    if (this.o.scheduler.cancel(runId) === 0) this.forget(runId);
    for (const stage of this.running.values()) {
      if (stage.runId !== runId) continue;
      stage.stop = "cancel";
      stage.handle?.cancel();
    }
    this.changes.emit("run", runId);
    this.wake();
  }

  /**
   * Hands a run the store has accepted to the scheduler. `succeeded`: stages of a recovered run that
   * already succeeded. The scheduler is not told to wait for them, but the loop keeps every need of a
   * stage, because its inputs are the committed outputs of all of them (a rerun after a restart too).
   */
  accept(
    run: Pick<RunRecord, "id" | "tenant" | "priority"> & { readonly workflow?: string },
    stages: readonly Stage[],
    graph: WorkflowGraph | undefined,
    nowMs = Date.now(),
    succeeded: ReadonlySet<string> = new Set()
  ): void {
    // Taken up once: in a cluster the leader hears of its own submissions through the store too.
    if (this.active.has(run.id)) return;
    const scheduled = succeeded.size === 0 ? stages : stages.map((s) => ({ ...s, needs: s.needs.filter((n) => !succeeded.has(n)) }));
    const result = this.o.scheduler.submit(runSpecFromStages(run.id, run.tenant, scheduled, run.priority), nowMs / 1000);
    if (!result.accepted) {
      // Submissions are checked before the store accepts them; a refusal here is a bug, not bad input.
      this.o.logger.error({ runId: run.id, field: result.field }, `scheduler refused an accepted run: ${result.message}`);
      this.o.audit?.({
        actor: AGENT_ACTOR,
        tenant: run.tenant,
        action: "schedule.refuse",
        object: `run/${run.id}`,
        outcome: "denied",
        data: { field: result.field ?? null, message: result.message.slice(0, 1000) },
      });
      void this.o.store.cancelRun(run.tenant, run.id).catch(() => undefined);
      return;
    }
    this.active.set(run.id, { id: run.id, tenant: run.tenant, priority: run.priority, workflow: run.workflow, graph, stages: new Map(stages.map((s) => [s.id, s])) });
    for (const s of scheduled) if (s.needs.length === 0) this.readySince.set(key(run.id, s.id), nowMs);
    this.wake();
  }

  /** Why a stage of an active run is not running, as the scheduler explains it. */
  explain(runId: string, stageId: string): WaitReason | null {
    if (this.running.has(key(runId, stageId))) return null;
    return this.o.scheduler.explain(runId, stageId) ?? this.lastWait.get(key(runId, stageId)) ?? null;
  }

  /** The stage as the loop runs it, while its run is active. */
  stageSpec(runId: string, stageId: string): Stage | undefined {
    return this.active.get(runId)?.stages.get(stageId);
  }

  activeRunsOf(tenant: string): ActiveRun[] {
    return [...this.active.values()].filter((r) => r.tenant === tenant);
  }

  /** Cancels a run: durable first, then every running process group of it is stopped. */
  async cancel(tenant: string, runId: string): Promise<RunRecord | undefined> {
    const result = await this.o.store.cancelRun(tenant, runId);
    if (result === undefined) return undefined;
    if (result.cancelled) this.stopRun(runId);
    return result.run;
  }

  wake(): void {
    if (this.wakeQueued || this.stopped) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      if (!this.stopped) this.tick();
    });
  }

  /** Stops taking decisions and stops the stages it runs; the store keeps their attempts open for recovery. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.backoffTimers.clear();
    for (const stage of this.running.values()) {
      stage.stop = "shutdown";
      stage.handle?.cancel();
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private tick(): void {
    const nowMs = Date.now();
    for (const d of this.o.scheduler.schedule(nowMs / 1000)) {
      if (d.kind === "placed") {
        this.o.audit?.({
          actor: AGENT_ACTOR,
          tenant: this.active.get(d.runId)?.tenant ?? null,
          action: "schedule.place",
          object: `run/${d.runId}/stage/${d.stageId}`,
          outcome: "success",
          data: { gpus: [...d.gpuIds], evict: this.standIns(d.evict).map((e) => ({ gpu: e.gpu, model: e.model })) },
        });
        this.track(this.dispatch(d, nowMs));
      } else if (d.kind === "killed") {
        this.o.audit?.({
          actor: AGENT_ACTOR,
          tenant: this.active.get(d.runId)?.tenant ?? null,
          action: "schedule.preempt",
          object: `run/${d.runId}/stage/${d.stageId}`,
          outcome: "success",
          data: { for: `run/${d.forRunId}/stage/${d.forStageId}` },
        });
        this.preempt(d);
      }
      else this.lastWait.set(key(d.runId, d.stageId), d.reason);
    }
  }

  private track(work: Promise<unknown>): void {
    // A failure here must not take the agent down: it is logged, and recovery on restart repairs the store.
    const guarded = work.catch((err: unknown) => this.o.logger.error({ err }, "a stage's dispatch failed"));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
  }

  private async dispatch(p: Placement, nowMs: number): Promise<void> {
    const k = key(p.runId, p.stageId);
    this.lastWait.delete(k);
    const run = this.active.get(p.runId);
    const stage = run?.stages.get(p.stageId);
    if (run === undefined || stage === undefined || this.abandoned.has(p.runId)) {
      // The store closed this run: give the scheduler its GPUs back without running anything.
      this.release(p.runId, p.stageId, "failed");
      return;
    }
    const slot: RunningStage = {
      runId: p.runId,
      stageId: p.stageId,
      tenant: run.tenant,
      gpus: p.gpuIds,
      placedAtMs: nowMs,
      attemptId: null,
      handle: null,
      stop: null,
      simulated: false,
    };
    this.running.set(k, slot);
    try {
      // The scheduler may place a preempted stage again before the store has closed its last attempt.
      const prior = this.settling.get(k);
      if (prior !== undefined) await prior;
      const attempt = await this.o.store.markPlaced({
        runId: p.runId,
        stageId: p.stageId,
        gpus: p.gpuIds,
        explanation: { evict: this.standIns(p.evict), ...p.reason, evicted: this.standIns(p.reason.evicted) },
      });
      slot.attemptId = attempt.id;
      slot.trace = this.o.tracing?.attempt({
        runId: p.runId, tenant: run.tenant, workflow: run.workflow ?? run.graph?.name ?? null, stageId: p.stageId, attempt: attempt.number, attemptId: attempt.id,
        gpus: p.gpuIds, node: this.device(p.gpuIds[0] ?? "")?.node ?? null, readyAtMs: this.readySince.get(k) ?? nowMs, placedAtMs: nowMs,
      });
      this.changes.emit("run", p.runId);
      const needed = stage.needs.length === 0 ? [] : (await this.o.store.artifactsOf(p.runId, stage.needs)).map((a) => ({ stageId: a.stageId, name: a.name, path: a.path }));
      const opened: OpenedInputs = this.o.openInputs
        ? await this.o.openInputs(run, p.stageId, attempt.number, needed)
        : { inputs: needed, release: async () => undefined };
      const inputs = new Map<string, Array<{ name: string; path: string }>>();
      for (const a of opened.inputs) {
        const list = inputs.get(a.stageId) ?? [];
        list.push({ name: a.name, path: a.path });
        inputs.set(a.stageId, list);
      }
      const spec = resolveStageCommand(stage, this.o.commandDir);
      const executor = executorFor(spec, this.o.executors);
      slot.simulated = executor.kind === "simulated" || p.gpuIds.some((id) => this.device(id)?.simulated !== false);
      slot.trace?.loadStarted();
      // The executor has copied the inputs into the workspace once it started: the decrypted copies go.
      const handle = await executor
        .start({
        attemptId: attempt.id,
        runId: p.runId,
        tenant: run.tenant,
        stageId: p.stageId,
        number: attempt.number,
        stage: spec,
        gpus: p.gpuIds.map((id) => {
          const device = this.device(id);
          return { id, uuid: device?.uuid ?? null, simulated: device?.simulated ?? true };
        }),
        inputs: [
          ...[...inputs].map(([stageId, artifacts]): AttemptInput => ({ stageId, artifacts })),
          ...(opened.runInputs !== undefined ? [{ runInputs: opened.runInputs }] : []),
        ],
        ...(opened.runInputsValue !== undefined && { runInputsValue: opened.runInputsValue }),
        ...(run.graph?.comfyNodes !== undefined && spec.comfyNodes !== undefined && { comfy: { nodes: run.graph.comfyNodes } }),
        ...(slot.trace !== undefined && { trace: slot.trace.context }),
        })
        .finally(() => opened.release());
      slot.handle = handle;
      if (slot.stop !== null) handle.cancel();
      try {
        await this.o.store.markRunning(attempt.id, { pid: handle.pid, workspace: handle.workspace });
      } catch (err) {
        if (!(err instanceof TransitionError)) throw err;
        handle.cancel(); // cancelled between placement and start
      }
      slot.trace?.running();
      const startedMs = Date.now();
      const ready = this.readySince.get(k);
      this.readySince.delete(k);
      this.o.observer?.stageStarted(run.tenant, ((ready ?? nowMs) <= startedMs ? startedMs - (ready ?? nowMs) : 0) / 1000);
      this.changes.emit("run", p.runId);
      const outcome = await handle.done;
      await this.complete(slot, run, stage, handle, outcome, startedMs);
    } catch (err) {
      if (err instanceof TransitionError) {
        // The run was cancelled or failed while this stage was being placed.
        this.abandoned.add(p.runId);
        slot.handle?.cancel();
        slot.trace?.end("cancelled");
        if (this.running.get(k) === slot) this.running.delete(k);
        this.release(p.runId, p.stageId, "failed");
      } else {
        this.o.logger.error({ err, runId: p.runId, stageId: p.stageId }, "could not carry out a placement");
        if (this.running.get(k) === slot) this.running.delete(k);
        slot.handle?.cancel();
        const decision = slot.attemptId === null ? retryUncounted(stage) : await this.retryDecision(slot, stage, null);
        const reason = `the agent could not run the attempt: ${(err as Error).message}`;
        await this.failAttempt(slot, decision.final === null ? reason : `${reason}; ${decision.final}`, { retry: decision.retry });
        slot.trace?.end("failed");
        if (!decision.retry) this.abandoned.add(p.runId);
        this.releaseFailed(p.runId, p.stageId, decision);
      }
      this.changes.emit("run", p.runId);
      this.wake();
    }
  }

  private async complete(slot: RunningStage, run: ActiveRun, stage: Stage, handle: RunningAttempt, outcome: AttemptOutcome, startedMs: number): Promise<void> {
    try {
      // Sealed before the attempt's end is recorded, so whoever sees it ended finds its logs sealed.
      if (outcome.logs && this.o.sealLogs && slot.stop !== "shutdown") {
        await this.o.sealLogs(run, outcome.logs).catch((err: unknown) => this.o.logger.error({ err, runId: run.id, stageId: stage.id }, "the stage's logs could not be sealed"));
      }
      await this.completeAttempt(slot, run, stage, handle, outcome, startedMs);
    } finally {
      // A ComfyUI server holds only what it loaded since its last restart (none after running out of
      // memory): once the stage released its GPU, the scheduler forgets the rest, before its next round,
      // and before anything else is awaited, so whoever sees the attempt ended sees the GPU as it is.
      // What completeAttempt did not end (a stop for shutdown, a cancel while sealing) ends here.
      slot.trace?.end(slot.stop === "shutdown" ? "agent-stopped" : "cancelled", { peakVramMiB: outcome.peakVramMiB ?? null });
      const gpu = slot.gpus[0];
      if (outcome.residentModels !== undefined && gpu !== undefined) this.o.scheduler.forgetResidentExcept(gpu, outcome.residentModels);
      // Its inputs were decrypted copies and its outputs are sealed: nothing of the workspace is kept.
      if (this.o.discardWorkspaces && handle.workspace !== null && slot.stop !== "shutdown") await rm(handle.workspace, { recursive: true, force: true });

    }
  }

  private async completeAttempt(slot: RunningStage, run: ActiveRun, stage: Stage, handle: RunningAttempt, outcome: AttemptOutcome, startedMs: number): Promise<void> {
    const k = key(slot.runId, slot.stageId);
    const seconds = (Date.now() - startedMs) / 1000;
    const finish = {
      exitCode: outcome.exitCode,
      signal: outcome.signal,
      peakVramMiB: outcome.peakVramMiB ?? null,
      simulated: outcome.simulated || slot.simulated,
    };
    if (slot.stop === "shutdown") return; // left open: the next agent recovers it
    this.o.observer?.attemptEnded?.({ tenant: run.tenant, workflow: run.workflow, gpus: slot.gpus.length, vramMiBPerGpu: stage.resources.vramMiB, seconds, simulated: finish.simulated });
    if (this.running.get(k) === slot) this.running.delete(k);
    if (slot.stop === "preempt") {
      // The scheduler already queued the stage again; its attempt ends as failed and retries.
      try {
        await this.failAttempt(slot, PREEMPTED_REASON, { ...finish, retry: true });
      } finally {
        slot.settled?.();
        if (this.settling.get(k) === slot.settling) this.settling.delete(k);
      }
      this.readySince.set(k, Date.now());
      this.ended(slot, run.tenant, "preempted", seconds, finish);
      this.afterChange(slot.runId);
      return;
    }
    if (slot.stop === "cancel" || this.abandoned.has(slot.runId)) {
      // The store closed the attempt when the run was cancelled; only the scheduler still has to know.
      this.ended(slot, run.tenant, "cancelled", seconds, finish);
      this.release(slot.runId, slot.stageId, "failed");
      this.afterChange(slot.runId);
      return;
    }
    if (outcome.reason === "interrupted") {
      // Its node was lost: the stage runs again elsewhere, and no failure is counted against it.
      this.o.logger.warn({ runId: slot.runId, stageId: slot.stageId, attemptId: slot.attemptId }, `stage attempt interrupted: ${outcome.message}`);
      try {
        if (slot.attemptId !== null) {
          if (this.o.store.markInterrupted) await this.o.store.markInterrupted(slot.attemptId, `interrupted: ${outcome.message}`);
          else await this.o.store.markFailed(slot.attemptId, { ...finish, reason: `interrupted: ${outcome.message}`.slice(0, 2000), retry: true });
        }
      } catch (err) {
        if (!(err instanceof TransitionError)) throw err;
      }
      this.readySince.set(k, Date.now());
      slot.trace?.end("interrupted", finish);
      this.ended(slot, run.tenant, "failed", seconds, finish);
      this.release(slot.runId, slot.stageId, "interrupted");
      this.afterChange(slot.runId);
      return;
    }
    let failure: string | undefined;
    if (outcome.reason === "completed") {
      try {
        slot.trace?.sealing();
        await this.o.store.markSealing(slot.attemptId!, finish);
        const committed = await handle.commitOutputs();
        const artifacts = this.o.sealOutputs ? await this.o.sealOutputs(run, committed) : committed;
        await this.o.store.markSucceeded(slot.attemptId!, { ...finish, artifacts });
      } catch (err) {
        if (err instanceof TransitionError) {
          // Cancelled while sealing: the store has the last word.
          this.abandoned.add(slot.runId);
          this.release(slot.runId, slot.stageId, "failed");
          this.afterChange(slot.runId);
          return;
        }
        failure = `outputs could not be committed: ${(err as Error).message}`;
      }
    } else {
      failure = outcome.message;
      // A ComfyUI stage that ran out of memory reports its GPU's whole memory as its peak: the cost model
      // learns that it needs more (its duration is taken as estimated, since it never finished).
      if (outcome.peakVramMiB !== undefined && /out of memory/i.test(outcome.message) && stage.estimate) {
        this.learn(run, stage, stage.estimate.durationS + stage.estimate.modelLoadS, outcome);
      }
    }
    if (failure === undefined) {
      this.ended(slot, run.tenant, "succeeded", seconds, finish);
      this.learn(run, stage, seconds, outcome);
      const state = this.release(slot.runId, slot.stageId, "succeeded");
      const now = Date.now();
      for (const other of run.stages.values()) if (other.needs.includes(slot.stageId)) this.readySince.set(key(slot.runId, other.id), now);
      if (state === "succeeded") this.o.observer?.runFinished(run.tenant, "succeeded");
    } else {
      // A process that could not commit its outputs exited 0: only a real exit code is matched against retry.nonRetryableExitCodes.
      const decision = await this.retryDecision(slot, stage, outcome.reason === "completed" ? null : outcome.exitCode);
      const { retry, failures, delayS } = decision;
      this.o.logger.warn({ runId: slot.runId, stageId: slot.stageId, failures, retry, backoffSeconds: delayS }, `stage attempt failed: ${failure}`);
      this.ended(slot, run.tenant, "failed", seconds, finish);
      await this.failAttempt(slot, decision.final === null ? failure : `${failure}; ${decision.final}`, { ...finish, retry });
      if (!retry) {
        this.abandoned.add(slot.runId);
        this.o.observer?.runFinished(run.tenant, "failed");
      }
      this.releaseFailed(slot.runId, slot.stageId, decision);
    }
    this.afterChange(slot.runId);
  }

  /** Tells the observer and the attempt's trace (unless it ended already) that the attempt ended. */
  private ended(slot: RunningStage, tenant: string, outcome: "succeeded" | "failed" | "cancelled" | "preempted", seconds: number, finish: { peakVramMiB: number | null; simulated: boolean }): void {
    this.o.observer?.stageFinished(tenant, outcome, seconds, finish.simulated);
    slot.trace?.end(outcome, finish);
  }

  /** Applies the stage's retry policy to its failures so far, as the store has them. */
  private async retryDecision(slot: RunningStage, stage: Stage, exitCode: number | null | undefined): Promise<RetryDecision> {
    const detail = await this.o.store.getRun(slot.tenant, slot.runId);
    // Without the run's record, the attempts are unknown: the stage is not retried rather than retried without end.
    const earlier = detail === undefined ? this.o.maxAttempts : countedFailures(detail.attempts, slot.stageId, slot.attemptId);
    return decideRetry(stage, earlier, exitCode, this.o.maxAttempts);
  }

  /**
   * Tells the scheduler a stage failed: not retried (final), or queued again once its backoff ends,
   * when the loop wakes to place it.
   */
  private releaseFailed(runId: string, stageId: string, decision: RetryDecision): void {
    const notBeforeMs = Date.now() + decision.delayS * 1000;
    this.release(runId, stageId, "failed", decision.retry ? { notBefore: notBeforeMs / 1000 } : { final: true });
    if (decision.retry) this.backoffUntil(runId, stageId, notBeforeMs);
  }

  /** Dispatch latency counts from the backoff's end; the loop wakes then to place the stage. */
  private backoffUntil(runId: string, stageId: string, notBeforeMs: number): void {
    this.readySince.set(key(runId, stageId), notBeforeMs);
    if (notBeforeMs > Date.now() && !this.stopped) this.backoffTimers.at(notBeforeMs, () => this.wake());
  }

  private async failAttempt(
    slot: RunningStage,
    reason: string,
    finish: { retry?: boolean; exitCode?: number | null; signal?: string | null; peakVramMiB?: number | null; simulated?: boolean }
  ): Promise<void> {
    if (slot.attemptId === null) return;
    try {
      await this.o.store.markFailed(slot.attemptId, { ...finish, reason: reason.slice(0, 2000), retry: finish.retry ?? true });
    } catch (err) {
      if (!(err instanceof TransitionError)) throw err;
    }
  }

  /** Tells the scheduler a stage ended; forgets the run once the scheduler has. */
  private release(
    runId: string,
    stageId: string,
    outcome: "succeeded" | "failed" | "interrupted",
    retry?: { readonly notBefore?: number; readonly final?: boolean }
  ): "running" | "succeeded" | "failed" {
    let state: "running" | "succeeded" | "failed";
    try {
      state = this.o.scheduler.finished(runId, stageId, Date.now() / 1000, outcome, retry);
    } catch {
      state = "failed";
    }
    if (state !== "running") this.forget(runId);
    return state;
  }

  /** Drops what the loop keeps of a run the scheduler no longer holds. */
  private forget(runId: string): void {
    if (this.active.has(runId)) void this.o.discardRun?.(runId).catch((err: unknown) => this.o.logger.warn({ err, runId }, "the run's scratch folders could not be removed"));
    this.active.delete(runId);
    this.abandoned.delete(runId);
    for (const k of this.readySince.keys()) if (k.startsWith(`${runId}/`)) this.readySince.delete(k);
    for (const k of this.lastWait.keys()) if (k.startsWith(`${runId}/`)) this.lastWait.delete(k);
  }

  private preempt(kill: Kill): void {
    const slot = this.running.get(key(kill.runId, kill.stageId));
    if (slot === undefined) return;
    this.o.logger.info({ runId: kill.runId, stageId: kill.stageId, for: `${kill.forRunId}/${kill.forStageId}` }, "preempting a batch stage");
    slot.stop = "preempt";
    slot.settling = new Promise<void>((resolve) => (slot.settled = resolve));
    this.settling.set(key(kill.runId, kill.stageId), slot.settling);
    slot.handle?.cancel();
  }

  /** Real (not simulated) ComfyUI stages refine the cost model with what they measured. */
  private learn(run: ActiveRun, stage: Stage, seconds: number, outcome: AttemptOutcome): void {
    if (outcome.simulated || run.graph?.format !== "comfyui" || stage.comfyNodes === undefined) return;
    try {
      observeStage(this.o.costModel, run.graph, stage, {
        durationS: Math.max(0, seconds - (stage.estimate?.modelLoadS ?? 0)),
        peakVramMiB: outcome.peakVramMiB ?? stage.resources.vramMiB,
      });
      this.o.onCostModelChange?.();
    } catch (err) {
      this.o.logger.warn({ err, runId: run.id, stageId: stage.id }, "could not feed the cost model");
    }
  }

  /** Model names come from sealed documents: the store and the audit log get their stand-ins. */
  private standIns<T extends { readonly model: string }>(list: readonly T[]): T[] {
    const tags = this.o.modelTags;
    return tags === undefined ? [...list] : list.map((e) => ({ ...e, model: tags.tag(e.model) }));
  }

  private afterChange(runId: string): void {
    this.changes.emit("run", runId);
    this.wake();
  }

  private device(id: string): GpuDevice | undefined {
    return this.o.devices.find((d) => d.id === id);
  }
}

const key = (runId: string, stageId: string) => `${runId}/${stageId}`;
const AGENT_ACTOR = "gpufabric-agent";
