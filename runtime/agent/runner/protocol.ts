/**
 * The runner protocol: one JSON object per line over a Unix socket in a volume the agent's and the
 * runner's containers share. The agent asks; the runner starts stage processes, passes their output
 * back, signals them, and runs diagnostic programs (nvidia-smi) for the GPUs only its container holds.
 */
import type { SignalScope } from "../executors/spawner.ts";

export const RUNNER_PROTOCOL_VERSION = 1;
/** Longest line either side accepts: a stage's argv and environment fit well within it. */
export const MAX_LINE_BYTES = 8 * 1024 * 1024;

export type AgentMessage =
  | { readonly t: "hello"; readonly version: number }
  | {
      readonly t: "spawn";
      readonly id: number;
      readonly file: string;
      readonly args: readonly string[];
      readonly cwd: string;
      readonly env: Readonly<Record<string, string>>;
      readonly uid?: number;
      readonly gid?: number;
    }
  | { readonly t: "signal"; readonly id: number; readonly signal: NodeJS.Signals; readonly scope: SignalScope }
  | { readonly t: "exec"; readonly id: number; readonly file: string; readonly args: readonly string[]; readonly timeoutMs: number };

export type RunnerMessage =
  | { readonly t: "hello"; readonly version: number; readonly pid: number; readonly uid: number; readonly canChangeUsers: boolean }
  | { readonly t: "started"; readonly id: number; readonly pid: number }
  | { readonly t: "spawn-failed"; readonly id: number; readonly message: string }
  | { readonly t: "out"; readonly id: number; readonly stream: "stdout" | "stderr"; readonly data: string }
  | { readonly t: "error"; readonly id: number; readonly message: string }
  | { readonly t: "exit"; readonly id: number; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly t: "close"; readonly id: number }
  | { readonly t: "exec-result"; readonly id: number; readonly ok: boolean; readonly stdout?: string; readonly message?: string };

/** Splits a byte stream into lines and parses each as JSON; a line past the cap or not JSON ends the connection. */
export class LineReader {
  private buffered: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly onMessage: (message: unknown) => void,
    private readonly onBad: (why: string) => void
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, start)) {
      this.buffered.push(chunk.subarray(start, i));
      const line = Buffer.concat(this.buffered).toString("utf8");
      this.buffered = [];
      this.size = 0;
      start = i + 1;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        this.onBad("a line that is not JSON");
        return;
      }
      this.onMessage(parsed);
    }
    if (start < chunk.length) {
      this.buffered.push(chunk.subarray(start));
      this.size += chunk.length - start;
      if (this.size > MAX_LINE_BYTES) this.onBad(`a line longer than ${MAX_LINE_BYTES} bytes`);
    }
  }
}

export const line = (message: AgentMessage | RunnerMessage): string => `${JSON.stringify(message)}\n`;
