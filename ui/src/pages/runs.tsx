/** The runs list: filters, server-side paging (one page in the DOM), live through /v1/runs/stream. */
import { useEffect, useState } from "preact/hooks";
import { messageOf } from "../api.ts";
import { ErrorBox, Page, StatusBadge, useEventStream, useNow } from "../components.tsx";
import { formatAgo, formatTime, queryString } from "../lib/format.ts";
import { getJsonPrefetched, RUNS_PAGE_SIZE, runsListPath } from "../lib/prefetch.ts";
import { runHref, workflowHref } from "../lib/route.ts";
import { applyRunEvent, type RunFilters, type RunSummary } from "../lib/runs.ts";

const PAGE_SIZE = RUNS_PAGE_SIZE;
const RUN_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const PRIORITIES = ["interactive", "batch"];

export function RunsPage() {
  const [filters, setFilters] = useState<RunFilters>({ status: "", workflow: "", priority: "" });
  const [workflowText, setWorkflowText] = useState("");
  // The cursors of the pages before this one, so "Previous" goes back without the server keeping state.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const [rows, setRows] = useState<RunSummary[]>([]);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const now = useNow(10_000);

  useEffect(() => {
    let stale = false;
    setLoading(true);
    getJsonPrefetched<{ runs: RunSummary[]; nextCursor: string | null }>(runsListPath({ ...filters }, cursor))
      .then((page) => {
        if (stale) return;
        setRows(page.runs);
        setNextCursor(page.nextCursor);
        setError(null);
      })
      .catch((err) => !stale && setError(messageOf(err)))
      .finally(() => !stale && setLoading(false));
    return () => {
      stale = true;
    };
  }, [filters, cursor]);

  useEventStream(`/v1/runs/stream${queryString({ ...filters })}`, "run", (data) => {
    try {
      const run = JSON.parse(data) as RunSummary;
      setRows((current) => applyRunEvent(current, run, filters, cursors.length === 1, PAGE_SIZE));
    } catch {
      // A malformed event changes nothing; the next one or a reload shows the truth.
    }
  });

  const setFilter = (patch: Partial<RunFilters>) => {
    setFilters((f) => ({ ...f, ...patch }));
    setCursors([null]);
  };

  return (
    <Page title="Runs">
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ workflow: workflowText.trim() });
        }}
      >
        <label>
          Status
          <select name="status" value={filters.status} onChange={(e) => setFilter({ status: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <input
            name="workflow"
            value={workflowText}
            placeholder="any"
            onInput={(e) => setWorkflowText((e.target as HTMLInputElement).value)}
            onChange={(e) => setFilter({ workflow: (e.target as HTMLInputElement).value.trim() })}
          />
        </label>
        <label>
          Priority
          <select name="priority" value={filters.priority} onChange={(e) => setFilter({ priority: (e.target as HTMLSelectElement).value })}>
            <option value="">any</option>
            {PRIORITIES.map((p) => (
              <option value={p}>{p}</option>
            ))}
          </select>
        </label>
        <span class="live" title="updates arrive as server-sent events">
          live
        </span>
      </form>
      <ErrorBox error={error} />
      <table class="grid runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Workflow</th>
            <th scope="col">Priority</th>
            <th scope="col">Stages</th>
            <th scope="col">Submitted by</th>
            <th scope="col">Created</th>
            <th scope="col">Updated</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr
              key={r.id}
              data-testid="run-row"
              data-run-id={r.id}
              data-status={r.status}
              class="clickable"
              onClick={(e) => {
                if (!(e.target instanceof HTMLAnchorElement)) location.hash = runHref(r.id);
              }}
            >
              <td class="mono">
                <a href={runHref(r.id)}>{r.id}</a>
              </td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              <td>
                <a href={workflowHref(r.workflow)}>{r.workflow}</a>
              </td>
              <td>{r.priority}</td>
              <td>
                <Progress stages={r.stages} />
              </td>
              <td>{r.submittedBy}</td>
              <td title={formatTime(r.createdAt)}>{formatAgo(r.createdAt, now)}</td>
              <td title={formatTime(r.updatedAt)}>{formatAgo(r.updatedAt, now)}</td>
            </tr>
          ))}
          {rows.length === 0 && !loading ? (
            <tr>
              <td colSpan={8} class="empty">
                No runs match.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <nav class="pager" aria-label="pages">
        <button type="button" data-testid="prev-page" disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Previous
        </button>
        <span>page {cursors.length}</span>
        <button type="button" data-testid="next-page" disabled={nextCursor === null} onClick={() => nextCursor && setCursors((c) => [...c, nextCursor])}>
          Next →
        </button>
      </nav>
    </Page>
  );
}

function Progress({ stages }: { stages: RunSummary["stages"] }) {
  const pct = (n: number) => `${stages.total === 0 ? 0 : (n / stages.total) * 100}%`;
  return (
    <span class="progress" title={`${stages.succeeded} succeeded, ${stages.running} running, ${stages.failed} failed of ${stages.total}`}>
      <span class="bar" aria-hidden="true">
        <span class="ok" style={{ width: pct(stages.succeeded) }} />
        <span class="run" style={{ width: pct(stages.running) }} />
        <span class="bad" style={{ width: pct(stages.failed) }} />
      </span>
      {stages.succeeded}/{stages.total}
    </span>
  );
}
