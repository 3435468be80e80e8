/**
 * `gpufabric runner`: starts stage processes for an agent in another container of the same pod. Its
 * container holds no Secret, no store and no audit log: only the scratch volume where workspaces are,
 * the model cache and the socket. It serves one agent at a time; when that agent goes away, everything
 * it started is killed (the restarted agent reruns those stages).
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { descendantsOf } from "../executors/spawner.ts";
import { canChangeUsers } from "../sandbox/probe.ts";
import { LineReader, RUNNER_PROTOCOL_VERSION, line, type AgentMessage, type RunnerMessage } from "./protocol.ts";

export interface RunnerOptions {
  readonly socket: string;
  readonly log?: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
}

export interface RunningRunner {
  readonly socket: string;
  close(): Promise<void>;
}

const SIGNALS = new Set(["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGSTOP"]);

export async function startRunner(options: RunnerOptions): Promise<RunningRunner> {
  const log = options.log ?? (() => undefined);
  mkdirSync(dirname(options.socket), { recursive: true, mode: 0o700 });
  // A socket left by a runner that was killed: nobody listens on it any more.
  if (existsSync(options.socket)) rmSync(options.socket);
  let current: Socket | null = null;
  const server: Server = createServer((socket) => {
    if (current !== null) {
      log("warn", "a second agent connected while one is served: refused");
      socket.end(line({ t: "error", id: 0, message: "this runner already serves an agent" }));
      return;
    }
    current = socket;
    log("info", "agent connected");
    serve(socket, log).finally(() => {
      current = null;
      log("info", "agent disconnected: its stages were stopped");
    });
  });
  // Only the runner's own user (the agent runs as the same uid in its pod) may connect.
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.socket, () => resolve());
    });
  } finally {
    process.umask(previous);
  }
  chmodSync(options.socket, 0o600);
  log("info", "runner listening", { socket: options.socket });
  return {
    socket: options.socket,
    close: () =>
      new Promise<void>((resolve) => {
        (current as Socket | null)?.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Serves one agent connection until it closes; then kills every process group it started. */
function serve(socket: Socket, log: NonNullable<RunnerOptions["log"]>): Promise<void> {
  const children = new Map<number, ChildProcess>();
  const send = (message: RunnerMessage) => {
    if (!socket.destroyed) socket.write(line(message));
  };
  const reader = new LineReader(
    (message) => handle(message as AgentMessage),
    (why) => {
      log("error", `the agent sent ${why}: connection closed`);
      socket.destroy();
    }
  );
  const handle = (m: AgentMessage) => {
    switch (m?.t) {
      case "hello":
        send({ t: "hello", version: RUNNER_PROTOCOL_VERSION, pid: process.pid, uid: process.getuid?.() ?? -1, canChangeUsers: canChangeUsers() });
        return;
      case "spawn": {
        let child: ChildProcess;
        try {
          child = spawn(m.file, [...m.args], {
            cwd: m.cwd,
            env: { ...m.env },
            detached: true,
            stdio: ["ignore", "pipe", "pipe"],
            ...(m.uid !== undefined && { uid: m.uid, gid: m.gid ?? m.uid }),
          });
        } catch (err) {
          send({ t: "spawn-failed", id: m.id, message: (err as Error).message });
          return;
        }
        if (child.pid !== undefined) {
          children.set(m.id, child);
          send({ t: "started", id: m.id, pid: child.pid });
        }
        child.stdout!.on("data", (c: Buffer) => send({ t: "out", id: m.id, stream: "stdout", data: c.toString("base64") }));
        child.stderr!.on("data", (c: Buffer) => send({ t: "out", id: m.id, stream: "stderr", data: c.toString("base64") }));
        child.on("error", (err) => {
          if (child.pid === undefined) send({ t: "spawn-failed", id: m.id, message: err.message });
          else send({ t: "error", id: m.id, message: err.message });
        });
        child.on("exit", (code, signal) => send({ t: "exit", id: m.id, code, signal }));
        child.on("close", () => {
          children.delete(m.id);
          send({ t: "close", id: m.id });
        });
        return;
      }
      case "signal": {
        const child = children.get(m.id);
        if (child?.pid === undefined || !SIGNALS.has(m.signal)) return;
        const targets = m.scope === "descendants" ? descendantsOf(child.pid) : [-child.pid];
        for (const target of targets) {
          try {
            process.kill(target, m.signal);
          } catch {
            // gone already
          }
        }
        return;
      }
      case "exec":
        execFile(m.file, [...m.args], { timeout: m.timeoutMs, killSignal: "SIGKILL", maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
          if (!err) send({ t: "exec-result", id: m.id, ok: true, stdout });
          else send({ t: "exec-result", id: m.id, ok: false, message: `'${m.file} ${m.args.join(" ")}' failed: ${(stderr || err.message).trim().split("\n")[0]}` });
        });
        return;
      default:
        log("warn", "the agent sent a message of no known type: ignored");
    }
  };
  socket.on("data", (chunk: Buffer) => reader.push(chunk));
  return new Promise((resolve) => {
    socket.on("error", () => undefined);
    socket.on("close", () => {
      for (const child of children.values()) {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      resolve();
    });
  });
}
