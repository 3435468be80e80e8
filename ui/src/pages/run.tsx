/** A run: status, DAG, GPU timeline, stages with their wait reasons, the selected stage's live log, artifacts. */
import { useEffect, useState } from "preact/hooks";
import { ApiError, getJson, messageOf, postJson, type Session } from "../api.ts";
import { ErrorBox, Page, SimulatedBadge, StatusBadge, useEventStream, useNow, useThrottled } from "../components.tsx";
import { formatBytes, formatDuration, formatMiB, formatTime } from "../lib/format.ts";
import { getJsonPrefetched, runDetailPath } from "../lib/prefetch.ts";
import { runHref, workflowHref } from "../lib/route.ts";
import { RunDag } from "./run-dag.tsx";
import { RunTimeline } from "./run-timeline.tsx";
import { TERMINAL_RUN, TERMINAL_STAGE, type RunDetail, type StageView } from "./run-types.ts";

// The run's event types (/v1/runs/:id/events names each event by its type).
const RUN_EVENTS = ["run.accepted", "run.running", "run.succeeded", "run.failed", "run.cancelled"];
const STAGE_EVENTS = ["waiting", "ready", "placed", "loading", "running", "sealing", "succeeded", "failed", "cancelled", "retrying", "interrupted"].map((s) => `stage.${s}`);
const IMAGE = /\.(png|jpe?g|webp|gif)$/i;

export function RunPage({ id, session }: { id: string; session: Session }) {
  const [run, setRun] = useState<RunDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Running bars and durations grow each second; a finished run's page stays still (200 stages re-rendered every second would be wasted work).
  const now = useNow(run !== null && !TERMINAL_RUN.has(run.status) ? 1000 : 60_000);
  const path = runDetailPath(id);

  const load = () =>
    getJsonPrefetched<RunDetail>(path)
      .then((r) => {
        setRun(r);
        // The first stage shown is chosen with the run (one render): an effect choosing it after the run was
        // drawn would draw the whole page (200 DAG nodes, bars and rows) a second time.
        setSelected((current) => current ?? defaultStage(r.stages));
        setError(null);
      })
      .catch((err) => setError(messageOf(err)));
  useEffect(() => void load(), [path]);
  // Events come in bursts (a stage placed, loading, running…): refetch at most every 250 ms.
  const refetch = useThrottled(load, 250);
  const live = run !== null && !TERMINAL_RUN.has(run.status);
  useEventStream(live ? `${path}/events` : null, [...RUN_EVENTS, ...STAGE_EVENTS, "message"], refetch);
  // A backstop while the run goes on: an event type this page does not name, or a stream that dropped, still shows within seconds.
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(refetch, 5000);
    return () => clearInterval(timer);
  }, [live, refetch]);


  if (run === null) return <Page title={`Run ${id}`}>{error ? <ErrorBox error={error} /> : <p class="loading">Loading…</p>}</Page>;

  const canAct = session.role !== "viewer";
  const act = (verb: "cancel" | "resubmit") => {
    setBusy(true);
    setActionError(null);
    postJson<{ id: string; status: string }>(`${path}/${verb}`)
      .then((res) => {
        if (verb === "resubmit" && res?.id) location.hash = runHref(res.id);
        else void load();
      })
      .catch((err) => setActionError(messageOf(err)))
      .finally(() => setBusy(false));
  };
  const duration = (Date.parse(TERMINAL_RUN.has(run.status) ? run.updatedAt : new Date(now).toISOString()) - Date.parse(run.createdAt)) / 1000;
  const waiting = run.stages.filter((s) => s.status === "waiting" || s.status === "ready");

  return (
    <Page
      title={
        <>
          Run <span class="mono">{run.id}</span> <StatusBadge status={run.status} testid="run-status" /> {run.simulated ? <SimulatedBadge /> : null}
        </>
      }
      actions={
        <>
          <button
            type="button"
            data-testid="cancel-run"
            disabled={!canAct || busy || TERMINAL_RUN.has(run.status)}
            title={canAct ? "cancel the run's stages" : "a viewer cannot cancel runs"}
            onClick={() => act("cancel")}
          >
            Cancel
          </button>
          <button
            type="button"
            data-testid="resubmit-run"
            disabled={!canAct || busy}
            title={canAct ? "submit the same workflow, inputs and priority again" : "a viewer cannot submit runs"}
            onClick={() => act("resubmit")}
          >
            Resubmit
          </button>
        </>
      }
    >
      <ErrorBox error={actionError ?? error} />
      <dl class="facts">
        <dt>Workflow</dt>
        <dd>
          <a href={workflowHref(run.workflow)}>{run.workflow}</a>
        </dd>
        <dt>Priority</dt>
        <dd>{run.priority}</dd>
        <dt>Submitted by</dt>
        <dd>{run.submittedBy}</dd>
        <dt>Created</dt>
        <dd>{formatTime(run.createdAt)}</dd>
        <dt>Duration</dt>
        <dd>{formatDuration(duration)}</dd>
        <dt>Stages</dt>
        <dd>
          {run.stages.filter((s) => s.status === "succeeded").length}/{run.stages.length} succeeded
        </dd>
      </dl>

      <h2>DAG</h2>
      <RunDag run={run} selected={selected} onSelect={setSelected} />

      <h2>Timeline</h2>
      {run.attempts ? <RunTimeline attempts={run.attempts} now={now} onSelect={setSelected} /> : <p class="empty">This agent does not report attempts' phases.</p>}

      {waiting.length > 0 ? (
        <>
          <h2>Why stages wait</h2>
          <ul class="waits scroll-box">
            {waiting.map((s) => (
              <li data-testid="wait-reason" data-stage-id={s.id}>
                <button type="button" class="link mono" onClick={() => setSelected(s.id)}>
                  {s.id}
                </button>{" "}
                <StatusBadge status={s.status} /> {s.wait?.text ?? s.reason ?? "no reason reported"}
              </li>
            ))}
          </ul>
        </>
      ) : null}

      <h2>Stages</h2>
      <StageTable stages={run.stages} selected={selected} onSelect={setSelected} />

      {selected ? <StageLog key={selected} runPath={path} stage={run.stages.find((s) => s.id === selected) ?? null} stageId={selected} /> : null}

      <h2>Artifacts</h2>
      {run.artifacts.length === 0 ? <p class="empty">No artifacts yet.</p> : null}
      <ul class="artifacts">
        {run.artifacts.map((a) => {
          const href = `${path}/artifacts/${encodeURIComponent(a.name)}?stage=${encodeURIComponent(a.stage)}`;
          return (
            <li data-testid="artifact" data-name={a.name} data-stage-id={a.stage}>
              {IMAGE.test(a.name) ? (
                <a href={href} target="_blank" rel="noopener">
                  <img src={href} alt={`${a.name} from ${a.stage}`} loading="lazy" />
                </a>
              ) : null}
              <div>
                <a href={href} download={a.name}>
                  {a.name}
                </a>
                <span class="muted">
                  {" "}
                  {a.stage} · {formatBytes(a.bytes)}
                </span>
              </div>
            </li>
          );
        })}
      </ul>
    </Page>
  );
}

/** The stage to show first: one running, else the last that failed, else the first. */
function defaultStage(stages: readonly StageView[]): string | null {
  return (stages.find((s) => s.status === "running") ?? stages.findLast((s) => s.status === "failed") ?? stages[0])?.id ?? null;
}

/** Rows a stage table draws with the rest of the page; the others follow once that has been painted. */
const FIRST_STAGE_ROWS = 40;

function StageTable({ stages, selected, onSelect }: { stages: readonly StageView[]; selected: string | null; onSelect: (id: string) => void }) {
  // The table sits below the DAG and the timeline: for a run of 200 stages its rows are half the page's
  // elements, so they are drawn after the first paint (an effect runs after it) rather than delaying the graph.
  const [allRows, setAllRows] = useState(stages.length <= FIRST_STAGE_ROWS);
  useEffect(() => {
    if (!allRows) setAllRows(true);
  }, [allRows]);
  const rows = allRows ? stages : stages.slice(0, FIRST_STAGE_ROWS);
  return (
    <div class="scroll-box">
    <table class="grid stages">
      <thead>
        <tr>
          <th scope="col">Stage</th>
          <th scope="col">Status</th>
          <th scope="col">GPUs</th>
          <th scope="col">Node</th>
          <th scope="col">Attempts</th>
          <th scope="col">Duration</th>
          <th scope="col">Peak VRAM</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((s) => (
          <tr class={`clickable${selected === s.id ? " selected" : ""}`} onClick={() => onSelect(s.id)} data-stage-id={s.id}>
            <td class="mono">
              <button type="button" class="link mono" aria-pressed={selected === s.id} onClick={() => onSelect(s.id)}>
                {s.id}
              </button>
            </td>
            <td>
              <StatusBadge status={s.status} /> {s.simulated ? <SimulatedBadge /> : null}
            </td>
            <td class="mono">{s.gpus.join(", ") || "—"}</td>
            <td>{s.node ?? "—"}</td>
            <td>{s.attempts}</td>
            <td>{s.startedAt ? formatDuration(((s.finishedAt ? Date.parse(s.finishedAt) : Date.now()) - Date.parse(s.startedAt)) / 1000) : "—"}</td>
            <td>{s.peakVramMiB != null ? formatMiB(s.peakVramMiB) : "—"}</td>
            <td class="reason">{s.wait?.text ?? s.reason ?? ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
    </div>
  );
}

interface LogView {
  readonly attempt: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

/** The stage's latest attempt's log, read again every 2 s while the stage is not finished. */
function StageLog({ runPath, stage, stageId }: { runPath: string; stage: StageView | null; stageId: string }) {
  const [log, setLog] = useState<LogView | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const finished = stage !== null && TERMINAL_STAGE.has(stage.status);
  const attempts = stage?.attempts ?? 0;
  useEffect(() => {
    let stopped = false;
    const read = () =>
      getJson<LogView>(`${runPath}/stages/${encodeURIComponent(stageId)}/logs`)
        .then((l) => {
          if (stopped) return;
          setLog(l);
          setNote(null);
          setError(null);
        })
        .catch((err) => {
          if (stopped) return;
          // Before its first attempt a stage has no log: that is a state, not an error.
          if (err instanceof ApiError && err.status === 404 && err.field === "attempt") setNote("no attempt yet");
          else setError(messageOf(err));
        });
    void read();
    if (finished) return () => void (stopped = true);
    const timer = setInterval(read, 2000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [runPath, stageId, finished, attempts]);
  return (
    <section class="stage-log" data-testid="stage-log" data-stage-id={stageId} aria-label={`log of stage ${stageId}`}>
      <h3>
        Log of <span class="mono">{stageId}</span>
        {log ? <span class="muted"> · attempt {log.attempt}</span> : null}
        {finished ? null : <span class="live">following</span>}
      </h3>
      <ErrorBox error={error} />
      {note ? <p class="empty">{note}</p> : null}
      {log ? (
        <pre class="log">
          {log.truncated ? "… (earlier output cut)\n" : ""}
          {log.stdout}
          {log.stderr ? <span class="stderr">{log.stderr}</span> : null}
          {!log.stdout && !log.stderr ? <span class="muted">(empty)</span> : null}
        </pre>
      ) : null}
    </section>
  );
}
