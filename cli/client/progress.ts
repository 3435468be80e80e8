/**
 * A run's progress as its event stream tells it: the state of each stage, a line per change (for logs
 * and pipes) and a table of every stage (redrawn in a terminal). Pure: the watch loop feeds it events.
 */

export interface RunEvent {
  readonly id: number;
  readonly type: string;
  readonly stage: string | null;
  readonly at: string | null;
  readonly data: Record<string, unknown>;
}

export interface StageProgress {
  readonly id: string;
  status: string;
  attempt: number;
  gpus: string[];
  startedAt: string | null;
  finishedAt: string | null;
  reason: string | null;
}

export interface RunProgress {
  readonly runId: string;
  status: string;
  readonly stages: Map<string, StageProgress>;
}

const TERMINAL_RUN = new Set(["succeeded", "failed", "cancelled"]);
const FINISHED_STAGE = new Set(["succeeded", "failed", "cancelled"]);

/** An event as the stream sends it: `data` holds the event's fields plus its stage and time. */
export function parseRunEvent(id: string | undefined, type: string, data: string): RunEvent {
  let fields: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(data) as unknown;
    if (typeof parsed === "object" && parsed !== null) fields = parsed as Record<string, unknown>;
  } catch {
    // A line the client does not understand is shown by its type alone.
  }
  const { stage, at, ...rest } = fields;
  return { id: Number(id ?? 0), type, stage: typeof stage === "string" ? stage : null, at: typeof at === "string" ? at : null, data: rest };
}

export function newProgress(runId: string, stageIds: readonly string[]): RunProgress {
  const stages = new Map<string, StageProgress>();
  for (const id of stageIds) stages.set(id, { id, status: "waiting", attempt: 0, gpus: [], startedAt: null, finishedAt: null, reason: null });
  return { runId, status: "queued", stages };
}

export function isTerminalRunEvent(type: string): boolean {
  return type.startsWith("run.") && TERMINAL_RUN.has(type.slice(4));
}

/** Applies one event; returns the line that describes the change, or undefined when nothing changed. */
export function applyEvent(progress: RunProgress, event: RunEvent): string | undefined {
  const [scope, what = ""] = event.type.split(".", 2) as [string, string | undefined];
  const time = clock(event.at);
  if (scope === "run") {
    if (what === "accepted") return `${time}  run ${progress.runId} accepted`;
    progress.status = what;
    if (what === "cancelled") {
      for (const s of progress.stages.values()) if (!FINISHED_STAGE.has(s.status)) s.status = "cancelled";
    }
    const reason = typeof event.data.reason === "string" ? `: ${event.data.reason}` : "";
    return `${time}  run ${progress.runId} ${what}${reason}`;
  }
  if (scope !== "stage" || event.stage === null) return undefined;
  let stage = progress.stages.get(event.stage);
  if (stage === undefined) {
    stage = { id: event.stage, status: "waiting", attempt: 0, gpus: [], startedAt: null, finishedAt: null, reason: null };
    progress.stages.set(event.stage, stage);
  }
  const attempt = typeof event.data.attempt === "number" ? event.data.attempt : stage.attempt;
  if (attempt !== stage.attempt) {
    stage.attempt = attempt;
    stage.startedAt = null;
    stage.finishedAt = null;
    stage.reason = null;
  }
  if (Array.isArray(event.data.gpus)) stage.gpus = event.data.gpus.filter((g): g is string => typeof g === "string");
  // A retry or an interruption puts the stage back in line for another attempt.
  stage.status = what === "retrying" || what === "interrupted" ? "waiting" : what;
  if (what === "running") stage.startedAt = event.at;
  if (FINISHED_STAGE.has(what)) stage.finishedAt = event.at;
  const reason = typeof event.data.reason === "string" ? event.data.reason : null;
  const exit = typeof event.data.exitCode === "number" ? `exit code ${event.data.exitCode}` : null;
  stage.reason = what === "failed" || what === "retrying" || what === "interrupted" ? [reason, exit].filter(Boolean).join(", ") || null : null;
  const details = [
    stage.attempt > 0 ? `attempt ${stage.attempt}` : null,
    what === "placed" && stage.gpus.length > 0 ? `on ${stage.gpus.join(", ")}` : null,
    FINISHED_STAGE.has(what) && stage.startedAt && stage.finishedAt ? elapsed(stage.startedAt, stage.finishedAt) : null,
    stage.reason,
  ].filter((d): d is string => d !== null);
  return `${time}  ${stage.id.padEnd(widthOf(progress))}  ${what}${details.length ? `  (${details.join(", ")})` : ""}`;
}

/**
 * The table a terminal shows: a summary line, then one row per stage. With more stages than `maxLines`
 * allows, succeeded ones are left out (counted on a line of their own): a table taller than the terminal
 * could not be redrawn in place.
 */
export function renderTable(progress: RunProgress, now = Date.now(), maxLines = Infinity): string[] {
  const all = [...progress.stages.values()];
  const stages = all.length + 2 > maxLines ? all.filter((s) => s.status !== "succeeded").slice(0, Math.max(1, maxLines - 3)) : all;
  const done = all.filter((s) => s.status === "succeeded").length;
  const running = all.filter((s) => s.status === "running" || s.status === "placed" || s.status === "sealing").length;
  const header = `run ${progress.runId}  ${progress.status}  ${done}/${all.length} stages succeeded${running ? `, ${running} in progress` : ""}`;
  const rows = [["STAGE", "STATUS", "ATTEMPT", "GPUS", "TIME", "REASON"]];
  for (const s of stages) {
    const time = s.startedAt ? elapsed(s.startedAt, s.finishedAt ?? new Date(now).toISOString()) : "";
    rows.push([s.id, s.status, s.attempt ? String(s.attempt) : "", s.gpus.join(",") || "", time, s.reason ?? ""]);
  }
  const hidden = all.length - stages.length;
  return [header, ...formatColumns(rows), ...(hidden > 0 ? [`(${hidden} more stage(s) not shown: succeeded, or beyond the terminal's height)`] : [])];
}

/** Rows padded to their columns' widths (the last column left ragged). */
export function formatColumns(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd());
}

function widthOf(progress: RunProgress): number {
  return Math.max(5, ...[...progress.stages.keys()].map((k) => k.length));
}

function clock(at: string | null): string {
  const date = at ? new Date(at) : new Date();
  return Number.isNaN(date.getTime()) ? "--:--:--" : date.toISOString().slice(11, 19);
}

function elapsed(from: string, to: string): string {
  const ms = Date.parse(to) - Date.parse(from);
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
