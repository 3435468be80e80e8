/**
 * Where a stage's process is started. `LocalSpawner`: a child of the agent. A runner (see
 * runtime/agent/runner) starts it in another container of the pod, one that holds no Secret: the
 * process executor drives either through this one interface.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import type { Readable } from "node:stream";

export interface StageLaunch {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly uid?: number;
  readonly gid?: number;
}

/** Which processes a signal reaches: the stage's process group, or every process below the one started. */
export type SignalScope = "group" | "descendants";

/** The started process, as the executor sees it, wherever it runs. */
export interface SpawnedStage {
  /** Its pid where it runs (and its process group id); undefined when it never started. */
  readonly pid: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  on(event: "error", listener: (err: Error) => void): this;
  on(event: "exit", listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: "close", listener: () => void): this;
  /** Never throws: a process already gone is no error. */
  signal(signal: NodeJS.Signals, scope: SignalScope): void;
}

export interface StageSpawner {
  /** `local`: the agent's own children (it can see their /proc); `runner`: another container's. */
  readonly where: "local" | "runner";
  /** Rejects only when the request itself is refused (a NUL byte in argv, a runner gone); a program that cannot start emits `error`. */
  spawn(launch: StageLaunch): Promise<SpawnedStage>;
}

export class LocalSpawner implements StageSpawner {
  readonly where = "local" as const;

  async spawn(launch: StageLaunch): Promise<SpawnedStage> {
    const child = spawn(launch.file, [...launch.args], {
      cwd: launch.cwd,
      env: { ...launch.env },
      // Its own process group, so that stopping the stage stops everything it started.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(launch.uid !== undefined && { uid: launch.uid, gid: launch.gid }),
    });
    return Object.assign(child, { signal: (signal: NodeJS.Signals, scope: SignalScope) => signalProcesses(child, signal, scope) }) as ChildProcess & SpawnedStage;
  }
}

function signalProcesses(child: ChildProcess, signal: NodeJS.Signals, scope: SignalScope): void {
  const pid = child.pid;
  if (pid === undefined) return;
  if (scope === "descendants") {
    for (const p of descendantsOf(pid)) {
      try {
        process.kill(p, signal);
      } catch {
        // gone already
      }
    }
    return;
  }
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already. EPERM: a member changed user; the rest were signalled.
  }
}

/** Every process below `root`, from /proc's children lists (Linux). */
export function descendantsOf(root: number): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
      } catch {
        continue;
      }
      for (const c of children.split(" ")) {
        const n = Number(c);
        if (Number.isInteger(n) && n > 0) {
          found.push(n);
          queue.push(n);
        }
      }
    }
  }
  return found;
}
