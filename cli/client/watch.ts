/**
 * Follows a run's event stream until the run ends, showing its progress: a line per change when the
 * output is not a terminal, a table of every stage redrawn in place when it is, or the events as JSON
 * lines with --json. A stream that drops before the run ends is resumed after the last event seen.
 */
import { CliError } from "../errors.ts";
import { AgentUnreachableError, type AgentClient } from "./http.ts";
import { applyEvent, isTerminalRunEvent, newProgress, parseRunEvent, renderTable, type RunEvent, type RunProgress } from "./progress.ts";
import { readServerEvents } from "./sse.ts";

export interface RunView {
  readonly id: string;
  readonly status: string;
  readonly workflow: string;
  readonly priority: string;
  readonly stages: ReadonlyArray<{ id: string; status: string; attempts: number; gpus: string[]; exitCode: number | null; reason: string | null; startedAt: string | null; finishedAt: string | null }>;
  readonly artifacts: ReadonlyArray<{ name: string; stage: string; bytes: number; sha256: string }>;
  readonly [key: string]: unknown;
}

export type WatchMode = "lines" | "table" | "json";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
/** Reconnections in a row without a new event before the watch gives up. */
const MAX_RECONNECTS = 5;

export async function getRun(client: AgentClient, runId: string): Promise<RunView> {
  return (await client.json<RunView>("GET", `/v1/runs/${encodeURIComponent(runId)}`)).body;
}

/** Watches `runId` until it ends and returns its final view. */
export async function watchRun(client: AgentClient, runId: string, mode: WatchMode, out: NodeJS.WritableStream = process.stdout): Promise<RunView> {
  const initial = await getRun(client, runId);
  const progress = newProgress(initial.id, initial.stages.map((s) => s.id));
  const table = mode === "table" ? new TableView(out, progress) : undefined;
  const show = (event: RunEvent) => {
    if (mode === "json") return void out.write(`${JSON.stringify({ id: event.id, type: event.type, stage: event.stage, at: event.at, ...event.data })}\n`);
    const line = applyEvent(progress, event);
    if (table) table.update();
    else if (line !== undefined) out.write(`${line}\n`);
  };
  try {
    await followEvents(client, runId, show);
  } finally {
    table?.finish();
  }
  return getRun(client, runId);
}

/** Reads the run's events into `show` until its terminal event, resuming a dropped stream after the last one seen. */
async function followEvents(client: AgentClient, runId: string, show: (event: RunEvent) => void): Promise<void> {
  let last = 0;
  let failures = 0;
  for (;;) {
    const before = last;
    try {
      const response = await client.stream(`/v1/runs/${encodeURIComponent(runId)}/events`, { accept: "text/event-stream", ...(last > 0 && { "last-event-id": String(last) }) });
      for await (const raw of readServerEvents(response)) {
        const event = parseRunEvent(raw.id, raw.type, raw.data);
        if (event.id > 0) last = event.id;
        show(event);
        if (isTerminalRunEvent(event.type)) {
          response.destroy();
          return;
        }
      }
    } catch (err) {
      // A refusal (the run is gone, the token revoked) is final; a dropped connection is retried below.
      if (err instanceof CliError && !(err instanceof AgentUnreachableError)) throw err;
    }
    // The stream closed without the run's end: the run may have ended before the stream resumed.
    if (TERMINAL.has((await getRun(client, runId)).status)) return;
    failures = last > before ? 0 : failures + 1;
    if (failures > MAX_RECONNECTS) throw new CliError(`lost the event stream of run ${runId} ${MAX_RECONNECTS} times in a row: run 'gpufabric runs watch ${runId}' again`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(8000, 250 * 2 ** failures)));
  }
}

/** The per-stage table, redrawn in place at most every 100 ms (and once more at the end). */
class TableView {
  private drawnLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly progress: RunProgress,
  ) {
    this.draw();
    // Running stages' times move even when no event comes.
    this.ticker = setInterval(() => this.update(), 1000);
  }

  update(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 100);
  }

  finish(): void {
    clearInterval(this.ticker);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private draw(): void {
    const rows = (this.out as NodeJS.WriteStream).rows;
    const lines = renderTable(this.progress, Date.now(), typeof rows === "number" && rows > 4 ? rows - 1 : Infinity);
    // Up to the table's first line, clear to the end of the screen, draw again.
    const rewind = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\r\x1b[J` : "";
    this.out.write(`${rewind}${lines.join("\n")}\n`);
    this.drawnLines = lines.length;
  }
}

/** The message a watch ends with: the run's outcome and, when it failed, the stages that did. */
export function outcomeLine(run: RunView): string {
  const done = run.stages.filter((s) => s.status === "succeeded").length;
  const failed = run.stages.filter((s) => s.status === "failed").map((s) => `${s.id}${s.reason ? ` (${s.reason})` : s.exitCode !== null ? ` (exit code ${s.exitCode})` : ""}`);
  return `run ${run.id} ${run.status}: ${done}/${run.stages.length} stages succeeded${failed.length ? `; failed: ${failed.join(", ")}` : ""}`;
}
