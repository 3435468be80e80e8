/** A workflow: stage duration percentiles across its recent runs, regressions flagged. */
import { ErrorBox, Page, useApi } from "../components.tsx";
import { formatDuration } from "../lib/format.ts";

interface Stats {
  readonly workflow: string;
  readonly runs: number;
  readonly stages: readonly { stageId: string; count: number; p50: number; p90: number; p99: number; recentP50: number | null; baselineP50: number | null; regression: boolean }[];
}

export function WorkflowPage({ name }: { name: string }) {
  const { data, error } = useApi<Stats>(`/v1/workflows/${encodeURIComponent(name)}/stats?runs=50`);
  return (
    <Page title={<>Workflow <span class="mono">{name}</span></>}>
      <ErrorBox error={error} />
      {data ? (
        <p class="muted">
          Durations over its last {data.runs} run(s). A stage is flagged when its recent median is well above its baseline median.{" "}
          <a href={`#/runs`}>All runs</a>
        </p>
      ) : null}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Stage</th>
            <th scope="col">Samples</th>
            <th scope="col">p50</th>
            <th scope="col">p90</th>
            <th scope="col">p99</th>
            <th scope="col">Recent p50</th>
            <th scope="col">Baseline p50</th>
            <th scope="col">Regression</th>
          </tr>
        </thead>
        <tbody>
          {(data?.stages ?? []).map((s) => (
            <tr data-testid="stage-stats" data-stage-id={s.stageId} data-regression={String(s.regression)} class={s.regression ? "regressed" : undefined}>
              <td class="mono">{s.stageId}</td>
              <td>{s.count}</td>
              <td>{formatDuration(s.p50)}</td>
              <td>{formatDuration(s.p90)}</td>
              <td>{formatDuration(s.p99)}</td>
              <td>{formatDuration(s.recentP50)}</td>
              <td>{formatDuration(s.baselineP50)}</td>
              <td>{s.regression ? <span class="badge st-failed">slower</span> : <span class="muted">no</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
