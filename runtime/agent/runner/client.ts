/**
 * The agent's side of the runner protocol: a StageSpawner whose processes run in the runner's
 * container, and the diagnostic commands (nvidia-smi) run there too.
 */
import { EventEmitter } from "node:events";
import { connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import type { SignalScope, SpawnedStage, StageLaunch, StageSpawner } from "../executors/spawner.ts";
import type { CommandResult } from "../inventory/command.ts";
import { LineReader, RUNNER_PROTOCOL_VERSION, line, type AgentMessage, type RunnerMessage } from "./protocol.ts";

export interface RunnerHello {
  readonly pid: number;
  readonly uid: number;
  readonly canChangeUsers: boolean;
}

class RemoteStage extends EventEmitter implements SpawnedStage {
  pid: number | undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  closed = false;

  constructor(
    private readonly id: number,
    private readonly client: RunnerClient
  ) {
    super();
  }

  signal(signal: NodeJS.Signals, scope: SignalScope): void {
    if (this.pid !== undefined && !this.closed) this.client.send({ t: "signal", id: this.id, signal, scope });
  }
}

export class RunnerClient implements StageSpawner {
  readonly where = "runner" as const;
  private nextId = 1;
  private readonly stages = new Map<number, RemoteStage>();
  private readonly pendingSpawns = new Map<number, { resolve: (s: RemoteStage) => void; reject: (e: Error) => void }>();
  private readonly pendingExecs = new Map<number, (r: CommandResult) => void>();
  private lost: string | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly hello: RunnerHello
  ) {}

  /** Connects, retrying until `waitMs` has passed (the runner's container may start after the agent's). */
  static async connect(path: string, waitMs = 60_000): Promise<RunnerClient> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        return await RunnerClient.connectOnce(path);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`no runner answered on ${path} within ${Math.round(waitMs / 1000)} s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private static connectOnce(path: string): Promise<RunnerClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      let client: RunnerClient | undefined;
      const reader = new LineReader(
        (message) => {
          const m = message as RunnerMessage;
          if (client) return client.receive(m);
          if (m?.t === "hello" && m.version === RUNNER_PROTOCOL_VERSION) {
            client = new RunnerClient(socket, { pid: m.pid, uid: m.uid, canChangeUsers: m.canChangeUsers });
            socket.on("close", () => client!.connectionLost("the runner's connection closed"));
            resolve(client);
          } else {
            socket.destroy();
            reject(new Error(`the runner answered ${JSON.stringify(m).slice(0, 200)}, not a hello of protocol ${RUNNER_PROTOCOL_VERSION}`));
          }
        },
        (why) => {
          socket.destroy();
          if (!client) reject(new Error(`the runner sent ${why}`));
          else client.connectionLost(`the runner sent ${why}`);
        }
      );
      socket.once("connect", () => socket.write(line({ t: "hello", version: RUNNER_PROTOCOL_VERSION })));
      socket.on("data", (chunk: Buffer) => reader.push(chunk));
      socket.once("error", (err) => {
        if (!client) reject(err);
      });
    });
  }

  send(message: AgentMessage): void {
    if (this.lost === null) this.socket.write(line(message));
  }

  spawn(launch: StageLaunch): Promise<SpawnedStage> {
    if (this.lost !== null) return Promise.reject(new Error(this.lost));
    const id = this.nextId++;
    const stage = new RemoteStage(id, this);
    this.stages.set(id, stage);
    return new Promise((resolve, reject) => {
      this.pendingSpawns.set(id, { resolve, reject });
      this.send({
        t: "spawn",
        id,
        file: launch.file,
        args: launch.args,
        cwd: launch.cwd,
        env: launch.env,
        ...(launch.uid !== undefined && { uid: launch.uid, gid: launch.gid ?? launch.uid }),
      });
    });
  }

  /** Runs a diagnostic program in the runner's container (nvidia-smi sees only the GPUs there). */
  run(file: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    if (this.lost !== null) return Promise.resolve({ ok: false, message: this.lost });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pendingExecs.set(id, resolve);
      this.send({ t: "exec", id, file, args, timeoutMs });
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(m: RunnerMessage): void {
    if (m.t === "exec-result") {
      const done = this.pendingExecs.get(m.id);
      this.pendingExecs.delete(m.id);
      done?.(m.ok ? { ok: true, stdout: m.stdout ?? "" } : { ok: false, message: m.message ?? "failed" });
      return;
    }
    if (m.t === "hello") return;
    const stage = this.stages.get(m.id);
    if (!stage) return;
    const pending = this.pendingSpawns.get(m.id);
    switch (m.t) {
      case "started":
        stage.pid = m.pid;
        this.pendingSpawns.delete(m.id);
        pending?.resolve(stage);
        return;
      case "spawn-failed":
        this.pendingSpawns.delete(m.id);
        if (pending) {
          // A program that could not start is the stage's fault, as with a local child: an `error`, no pid.
          pending.resolve(stage);
          setImmediate(() => stage.emit("error", new Error(m.message)));
        }
        return;
      case "out":
        (m.stream === "stdout" ? stage.stdout : stage.stderr).write(Buffer.from(m.data, "base64"));
        return;
      case "error":
        stage.emit("error", new Error(m.message));
        return;
      case "exit":
        stage.emit("exit", m.code, m.signal);
        return;
      case "close":
        this.finishStage(m.id, stage);
        return;
    }
  }

  private finishStage(id: number, stage: RemoteStage): void {
    this.stages.delete(id);
    stage.closed = true;
    stage.stdout.end();
    stage.stderr.end();
    stage.emit("close");
  }

  private connectionLost(why: string): void {
    if (this.lost !== null) return;
    this.lost = why;
    for (const [id, pending] of this.pendingSpawns) {
      this.pendingSpawns.delete(id);
      pending.reject(new Error(why));
    }
    for (const [id, done] of this.pendingExecs) {
      this.pendingExecs.delete(id);
      done({ ok: false, message: why });
    }
    // The runner kills what it started when the connection goes: those stages ended, killed.
    for (const [id, stage] of this.stages) {
      stage.emit("exit", null, "SIGKILL");
      this.finishStage(id, stage);
    }
  }
}
