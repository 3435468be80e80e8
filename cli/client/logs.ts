/**
 * `runs logs --follow`: the agent serves the tail of a stage's logs (the last 256 KiB of each stream),
 * so following means reading it again until the stage ends and printing only what is new. A retry
 * starts a new attempt, whose logs follow under a header line.
 */
import type { AgentClient } from "./http.ts";
import { AgentResponseError } from "./http.ts";
import { getRun } from "./watch.ts";

export interface LogTail {
  readonly stage: string;
  readonly attempt: number;
  readonly simulated: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

export function logsPath(runId: string, stage: string, attempt?: number): string {
  return `/v1/runs/${encodeURIComponent(runId)}/stages/${encodeURIComponent(stage)}/logs${attempt !== undefined ? `?attempt=${attempt}` : ""}`;
}

/**
 * What `next` adds to `previous`, two reads of a log's tail. When the tail window moved on (the stage
 * wrote more than it holds), `next` is the end of `previous` and then the new text, and its first
 * characters may be a cut UTF-8 sequence: a piece of `next` just after them is looked for in `previous`
 * to find where the new text starts. When no overlap is found, all of `next` is new.
 */
export function newText(previous: string, next: string): string {
  if (next.startsWith(previous)) return next.slice(previous.length);
  const skip = Math.min(4, next.length);
  const head = next.slice(skip, skip + 256);
  if (head.length === 0) return next;
  for (let k = previous.indexOf(head); k !== -1; k = previous.indexOf(head, k + 1)) {
    const rest = previous.slice(k);
    if (next.startsWith(rest, skip)) return next.slice(skip + rest.length);
  }
  return next;
}

export interface FollowOutput {
  text(stream: "stdout" | "stderr", attempt: number, text: string): void;
  attemptStarted(attempt: number): void;
}

/** Prints a stage's logs as they grow, until the stage (or, with `attempt`, that attempt) is over. */
export async function followLogs(client: AgentClient, runId: string, stage: string, attempt: number | undefined, output: FollowOutput, intervalMs = 1000): Promise<void> {
  let shownAttempt = 0;
  let seen = { stdout: "", stderr: "" };
  for (;;) {
    // The stage's state first, the logs after: logs read after the stage ended are complete.
    const run = await getRun(client, runId);
    const view = run.stages.find((s) => s.id === stage);
    if (view === undefined) throw new AgentResponseError(`not found (404): run '${runId}' has no stage '${stage}' (stages: ${run.stages.map((s) => s.id).join(", ")})`, 404, "not-found", "stageId");
    const over = FINISHED.has(view.status) || FINISHED.has(run.status) || (attempt !== undefined && view.attempts > attempt);
    let tail: LogTail | undefined;
    try {
      tail = (await client.json<LogTail>("GET", logsPath(runId, stage, attempt))).body;
    } catch (err) {
      // No attempt yet: the stage is still waiting for a GPU (or never ran).
      if (!(err instanceof AgentResponseError && err.status === 404 && err.field === "attempt")) throw err;
    }
    if (tail !== undefined) {
      if (tail.attempt !== shownAttempt) {
        if (shownAttempt !== 0 || attempt === undefined) output.attemptStarted(tail.attempt);
        shownAttempt = tail.attempt;
        seen = { stdout: "", stderr: "" };
      }
      for (const stream of ["stdout", "stderr"] as const) {
        const added = newText(seen[stream], tail[stream]);
        if (added !== "") output.text(stream, tail.attempt, added);
        seen[stream] = tail[stream];
      }
    }
    if (over) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
