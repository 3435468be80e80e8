/** The runs list's live updates: how one `run` event from /v1/runs/stream changes the page shown. */

export interface RunSummary {
  readonly id: string;
  readonly status: string;
  readonly workflow: string;
  readonly priority: string;
  readonly submittedBy: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly stages: { readonly total: number; readonly succeeded: number; readonly running: number; readonly failed: number };
}

export interface RunFilters {
  readonly status: string;
  readonly workflow: string;
  readonly priority: string;
}

export function matchesFilters(run: RunSummary, f: RunFilters): boolean {
  return (!f.status || run.status === f.status) && (!f.workflow || run.workflow === f.workflow) && (!f.priority || run.priority === f.priority);
}

/**
 * A run already on the page is replaced in place (or dropped when it no longer matches the filters). A run not
 * on the page is added at the top only on the first page (newest first), and the page keeps `limit` rows, so
 * the DOM never holds more than one page.
 */
export function applyRunEvent(rows: readonly RunSummary[], run: RunSummary, filters: RunFilters, firstPage: boolean, limit: number): RunSummary[] {
  const i = rows.findIndex((r) => r.id === run.id);
  const matches = matchesFilters(run, filters);
  if (i >= 0) {
    if (!matches) return rows.filter((r) => r.id !== run.id);
    const next = rows.slice();
    next[i] = run;
    return next;
  }
  if (!firstPage || !matches) return rows as RunSummary[];
  // Keep newest first: a late event for an older run goes to its place by creation time.
  const next = [...rows, run].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  return next.slice(0, limit);
}
