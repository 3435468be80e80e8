/**
 * Runs a stage's command as a child process (argv, no shell) in its own process group, pinned to its
 * GPUs, in a fresh workspace, with a minimal environment: the agent's own variables (tokens, keys,
 * cloud credentials) never reach a stage.
 */
import { isAbsolute } from "node:path";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import { visibleDeviceId, type VramSampler } from "../inventory/types.ts";
import { SandboxRefusal, type StageSandbox } from "../sandbox/index.ts";
import { CappedLog } from "./capped-log.ts";
import { LocalSpawner, type SpawnedStage, type StageSpawner } from "./spawner.ts";
import type { AttemptEndReason, AttemptOutcome, AttemptSpec, CommittedArtifact, Executor, RunningAttempt } from "./types.ts";
import { attemptPaths, commitOutputs, prepareWorkspace, type AttemptPaths, type InputMode } from "./workspace.ts";

export interface ProcessExecutorOptions {
  /** The agent's data directory: workspaces, logs and artifacts go under it. */
  readonly dataDir: string;
  /** Bytes of stdout and of stderr kept per attempt (default 16 MiB each). */
  readonly logCapBytes?: number;
  /** Between SIGTERM and SIGKILL when stopping a stage (default 10 s). */
  readonly killGraceMs?: number;
  /** Timeout for stages that declare none (default: none). */
  readonly defaultTimeoutS?: number;
  /** How needed outputs appear in `inputs/` (default `copy`: a stage cannot alter another's artifacts). */
  readonly inputMode?: InputMode;
  /** Reads VRAM in use on real GPUs; without it (or on simulated devices) no peak is recorded. */
  readonly vramSampler?: VramSampler;
  readonly sampleIntervalMs?: number;
  /** Where PATH, LANG and TZ for stages come from (default: the agent's environment). */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  /**
   * The sandbox every stage runs in. Absent only when the agent was started with
   * --unsafe-shared-identity (or in unit tests of the executor itself): stages then see what the agent sees.
   */
  readonly sandbox?: StageSandbox;
  /** Where stage processes start (default: as the agent's children). */
  readonly spawner?: StageSpawner;
}

const DEFAULT_LOG_CAP = 16 * 1024 * 1024;
const LOCAL = new LocalSpawner();
const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_SAMPLE_MS = 1_000;
/** setTimeout's ceiling (about 24.8 days); longer timeouts are clamped to it. */
const MAX_TIMER_MS = 2_147_483_647;
/** How long to wait for the pipes to close once the process and its group are gone. */
const PIPE_DRAIN_MS = 5_000;

export class ProcessExecutor implements Executor {
  readonly kind = "process" as const;

  constructor(private readonly options: ProcessExecutorOptions) {
    const issues: FieldIssue[] = [];
    if (!isAbsolute(options.dataDir)) issues.push({ field: "dataDir", message: `must be an absolute path (got '${options.dataDir}')` });
    const positive = (field: keyof ProcessExecutorOptions, value: number | undefined) => {
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) issues.push({ field, message: `must be a number above 0 (got ${value})` });
    };
    positive("logCapBytes", options.logCapBytes);
    positive("killGraceMs", options.killGraceMs);
    positive("defaultTimeoutS", options.defaultTimeoutS);
    positive("sampleIntervalMs", options.sampleIntervalMs);
    if (options.inputMode !== undefined && options.inputMode !== "copy" && options.inputMode !== "hardlink") {
      issues.push({ field: "inputMode", message: `must be 'copy' or 'hardlink' (got '${String(options.inputMode)}')` });
    }
    if (issues.length > 0) throw new ValidationError("process executor options", issues);
  }

  async start(attempt: AttemptSpec): Promise<RunningAttempt> {
    const command = attempt.stage.run?.command;
    if (!command || command.length === 0) {
      return endedAtSetup(attempt, "the stage has no command (run.command): only the simulated executor can run it");
    }
    const held = attempt.gpus.find((g) => !g.simulated && g.uuid === null);
    if (held !== undefined) {
      // Its GPU belongs to a ComfyUI server container (comfyui.image): this container cannot see it.
      return endedAtSetup(attempt, `gpu ${held.id} is held by its ComfyUI server container (comfyui.image): only ComfyUI stages run on it; run this workflow on a deployment whose GPUs are its own`);
    }
    let paths: AttemptPaths;
    try {
      paths = attemptPaths(this.options.dataDir, attempt.runId, attempt.stageId, attempt.number);
      await prepareWorkspace(paths, attempt.inputs, this.options.inputMode ?? "copy");
    } catch (err) {
      return endedAtSetup(attempt, `could not prepare the workspace: ${(err as Error).message}`);
    }
    const sandbox = this.options.sandbox;
    const env = stageEnvironment(attempt, sandbox ? sandboxView(sandbox) : paths, this.options.baseEnv ?? process.env);
    let launch: { file: string; args: readonly string[]; cwd: string };
    try {
      launch = sandbox
        ? await sandbox.prepare({
            tenant: attempt.tenant,
            command,
            env,
            network: attempt.stage.run?.network === "egress",
            timeoutS: attempt.stage.run?.timeoutSeconds ?? this.options.defaultTimeoutS,
            realGpus: attempt.gpus.some((g) => !g.simulated),
            workspace: paths.workspace,
            inputs: paths.inputs,
            outputs: paths.outputs,
            tmp: paths.tmp,
          })
        : { file: command[0]!, args: command.slice(1), cwd: paths.workspace };
    } catch (err) {
      const why = err instanceof SandboxRefusal ? err.message : `could not prepare the sandbox: ${(err as Error).message}`;
      return endedAtSetup(attempt, why);
    }
    const cap = this.options.logCapBytes ?? DEFAULT_LOG_CAP;
    let stdout: CappedLog;
    let stderr: CappedLog;
    try {
      stdout = new CappedLog(paths.stdoutLog, cap);
      stderr = new CappedLog(paths.stderrLog, cap);
    } catch (err) {
      return endedAtSetup(attempt, `could not create the stage's log files: ${(err as Error).message}`);
    }
    let child: SpawnedStage;
    try {
      child = await (this.options.spawner ?? LOCAL).spawn({ ...launch, env });
    } catch (err) {
      // Node refuses some arguments outright (a NUL byte in argv or env); a runner may be gone.
      stdout.close();
      stderr.close();
      return endedAtSetup(attempt, `could not start '${command[0]}': ${(err as Error).message}`);
    }
    const running = new ProcessAttempt(attempt, paths, child, stdout, stderr, this.options, sandbox !== undefined);
    if (child.pid === undefined) await running.done;
    return running;
  }
}

/** Where a sandboxed stage finds its folders: the sandbox's fixed paths, not the agent's layout. */
function sandboxView(sandbox: StageSandbox): StageFolders {
  const view = sandbox.view;
  const cache = sandbox.options.isolation.modelCacheDir;
  return { workspace: view.home, inputs: view.inputs, outputs: view.outputs, tmp: view.tmp, ...(cache !== null && { modelDir: cache }) };
}

/** The folders named in a stage's environment. */
export type StageFolders = Pick<AttemptPaths, "workspace" | "inputs" | "outputs" | "tmp"> & { readonly modelDir?: string };

/** The environment a stage sees: a few basics, its declared env, then what the agent sets. */
export function stageEnvironment(attempt: AttemptSpec, paths: StageFolders, base: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const devices = attempt.gpus.map(visibleDeviceId).join(",");
  return {
    PATH: base.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: base.LANG ?? "C.UTF-8",
    TZ: base.TZ ?? "UTC",
    HOME: paths.workspace,
    TMPDIR: paths.tmp,
    ...attempt.stage.run?.env,
    GPUFABRIC_RUN_ID: attempt.runId,
    GPUFABRIC_STAGE_ID: attempt.stageId,
    GPUFABRIC_ATTEMPT: String(attempt.number),
    GPUFABRIC_INPUT_DIR: paths.inputs,
    GPUFABRIC_OUTPUT_DIR: paths.outputs,
    ...(paths.modelDir !== undefined && { GPUFABRIC_MODEL_DIR: paths.modelDir }),
    // An empty CUDA_VISIBLE_DEVICES hides every GPU from a CPU-only stage.
    CUDA_VISIBLE_DEVICES: devices,
    NVIDIA_VISIBLE_DEVICES: devices === "" ? "none" : devices,
    GPUFABRIC_GPUS_SIMULATED: String(attempt.gpus.some((g) => g.simulated)),
    // Only when tracing is on (the loop sets `trace` then): a TRACEPARENT naming spans no collector ever
    // receives would have the stage's own instrumentation hang its spans under a parent that never exists.
    // Set after the stage's declared env, so a stage cannot pass off another trace as the agent's.
    ...(attempt.trace !== undefined && { TRACEPARENT: attempt.trace.traceparent }),
    ...(attempt.trace?.tracestate !== undefined && { TRACESTATE: attempt.trace.tracestate }),
  };
}

class ProcessAttempt implements RunningAttempt {
  readonly attemptId: string;
  readonly pid: number | null;
  readonly workspace: string;
  readonly done: Promise<AttemptOutcome>;
  private resolveDone!: (outcome: AttemptOutcome) => void;
  private stopReason: "timeout" | "cancelled" | null = null;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private spawnError: Error | null = null;
  private finished = false;
  private peakVramMiB: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private sampler: NodeJS.Timeout | undefined;
  private readonly timeoutS: number | undefined;
  private committed: Promise<CommittedArtifact[]> | undefined;

  constructor(
    private readonly attempt: AttemptSpec,
    private readonly paths: AttemptPaths,
    private readonly child: SpawnedStage,
    private readonly stdout: CappedLog,
    private readonly stderr: CappedLog,
    private readonly options: ProcessExecutorOptions,
    /** Run through bwrap: the stage's processes are bwrap's descendants, in a PID namespace of their own. */
    private readonly sandboxed: boolean
  ) {
    this.attemptId = attempt.attemptId;
    this.pid = child.pid ?? null;
    this.workspace = paths.workspace;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.timeoutS = attempt.stage.run?.timeoutSeconds ?? options.defaultTimeoutS;

    child.stdout!.on("data", (chunk: Buffer) => stdout.write(chunk));
    child.stderr!.on("data", (chunk: Buffer) => stderr.write(chunk));
    // A pipe error must not become an uncaught exception; the exit still arrives.
    child.stdout!.on("error", () => undefined);
    child.stderr!.on("error", () => undefined);
    child.on("error", (err) => {
      // Spawning failed (no such program, not executable): nothing ran.
      if (this.pid === null) {
        this.spawnError = err;
        this.finish();
      }
    });
    child.on("exit", (code, signal) => {
      this.exited = { code, signal };
      // The stage ends with its main process; anything it left running in its group goes too.
      this.signalGroup("SIGKILL");
      this.timers.push(setTimeout(() => this.finish(), PIPE_DRAIN_MS));
    });
    child.on("close", () => this.finish());

    if (this.pid !== null) {
      if (this.timeoutS !== undefined) {
        this.timers.push(setTimeout(() => this.stop("timeout"), Math.min(this.timeoutS * 1000, MAX_TIMER_MS)));
      }
      this.startSampling();
    }
  }

  cancel(): void {
    this.stop("cancelled");
  }

  /** Committing twice returns the first commit's result: the outputs moved once. */
  commitOutputs(): Promise<CommittedArtifact[]> {
    this.committed ??= this.commitOnce();
    return this.committed;
  }

  private async commitOnce(): Promise<CommittedArtifact[]> {
    const outcome = await this.done;
    if (outcome.reason !== "completed") {
      throw new Error(
        `attempt ${this.attempt.number} of stage '${this.attempt.stageId}' ended '${outcome.reason}': only a completed attempt's outputs are committed`
      );
    }
    return commitOutputs(this.paths, `stage '${this.attempt.stageId}' (attempt ${this.attempt.number})`);
  }

  private stop(reason: "timeout" | "cancelled"): void {
    if (this.exited || this.stopReason || this.pid === null) return;
    this.stopReason = reason;
    // bwrap does not pass signals on, and dying it takes the sandbox with it: a sandboxed stage's own
    // processes get the SIGTERM, so they may finish cleanly within the grace period.
    this.child.signal("SIGTERM", this.sandboxed ? "descendants" : "group");
    this.timers.push(setTimeout(() => this.signalGroup("SIGKILL"), this.options.killGraceMs ?? DEFAULT_GRACE_MS));
  }

  /** Never throws: it runs from timers and process events, where an exception would end the agent. */
  private signalGroup(signal: NodeJS.Signals): void {
    if (this.pid === null) return;
    this.child.signal(signal, "group");
  }

  private startSampling(): void {
    const sampler = this.options.vramSampler;
    const gpus = this.attempt.gpus;
    // Simulated devices have no memory to read: no peak is recorded for them.
    if (!sampler || gpus.length === 0 || gpus.some((g) => g.simulated || g.uuid === null)) return;
    const uuids = gpus.map((g) => g.uuid!);
    let busy = false;
    this.sampler = setInterval(() => {
      if (busy || this.pid === null) return;
      busy = true;
      sampler
        .sample(uuids, this.pid)
        .then((mib) => {
          if (mib !== undefined && !this.finished) this.peakVramMiB = Math.max(this.peakVramMiB ?? 0, mib);
        })
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, this.options.sampleIntervalMs ?? DEFAULT_SAMPLE_MS);
  }

  private finish(): void {
    if (this.finished) return;
    if (!this.spawnError && !this.exited) return;
    this.finished = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.sampler) clearInterval(this.sampler);
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.stdout.close();
    this.stderr.close();
    const logFailure = this.stdout.failure ?? this.stderr.failure;
    const logs = {
      stdout: this.stdout.path,
      stderr: this.stderr.path,
      truncated: this.stdout.truncated || this.stderr.truncated,
      ...(logFailure === undefined ? {} : { failure: `could not write the stage's logs: ${logFailure}` }),
    };
    const { reason, message } = this.describe();
    this.resolveDone({
      exitCode: this.exited?.code ?? null,
      signal: this.exited?.signal ?? null,
      reason,
      message,
      simulated: false,
      logs,
      ...(this.peakVramMiB === undefined ? {} : { peakVramMiB: this.peakVramMiB }),
    });
  }

  private describe(): { reason: AttemptEndReason; message: string } {
    const program = this.attempt.stage.run!.command[0];
    if (this.spawnError) {
      return { reason: "setup-failed", message: `could not start '${program}': ${this.spawnError.message} (is it installed and on the stage's PATH?)` };
    }
    const { code, signal } = this.exited!;
    if (this.stopReason === "timeout") {
      return { reason: "timeout", message: `stopped after its timeout of ${this.timeoutS} s: raise run.timeoutSeconds if the stage needs longer` };
    }
    if (this.stopReason === "cancelled") return { reason: "cancelled", message: "stopped: the run was cancelled" };
    if (code === 0) return { reason: "completed", message: "exited with code 0" };
    // bwrap reports a stage killed by signal N as exit code 128 + N.
    if (this.sandboxed && code !== null && code > 128 && code < 160) {
      return { reason: "signal", message: `killed by signal ${code - 128}, not sent by the agent (out of memory, or a sandbox limit?)` };
    }
    if (code !== null) return { reason: "exit-code", message: `exited with code ${code}: see the stage's stderr log` };
    return { reason: "signal", message: `killed by ${signal}, not sent by the agent (out of memory?)` };
  }
}

function endedAtSetup(attempt: AttemptSpec, message: string): RunningAttempt {
  const outcome: AttemptOutcome = { exitCode: null, signal: null, reason: "setup-failed", message, simulated: false };
  return {
    attemptId: attempt.attemptId,
    pid: null,
    workspace: null,
    done: Promise.resolve(outcome),
    cancel: () => undefined,
    commitOutputs: () => Promise.reject(new Error(`attempt ${attempt.number} of stage '${attempt.stageId}' never ran: ${message}`)),
  };
}
