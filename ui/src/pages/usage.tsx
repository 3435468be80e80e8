/** Usage per tenant, workflow and stage over a time range, with the chargeback CSV export. */
import { useState } from "preact/hooks";
import { ErrorBox, Page, useApi } from "../components.tsx";
import { queryString } from "../lib/format.ts";

interface Usage {
  readonly from: string;
  readonly to: string;
  readonly rows: readonly { tenant: string; workflow: string; stage: string; gpuSeconds: number; vramGiBSeconds: number; attempts: number }[];
}

const DAY = 86_400_000;

function isoDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

export function UsagePage() {
  const [from, setFrom] = useState(isoDay(Date.now() - 7 * DAY));
  const [to, setTo] = useState(isoDay(Date.now() + DAY));
  // Whole days in UTC: `to` is exclusive, so the default range includes today.
  const q = queryString({ from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z`, groupBy: "tenant,workflow,stage" });
  const { data, error } = useApi<Usage>(`/v1/usage${q}`);
  const total = (data?.rows ?? []).reduce((a, r) => ({ gpu: a.gpu + r.gpuSeconds, vram: a.vram + r.vramGiBSeconds }), { gpu: 0, vram: 0 });
  return (
    <Page
      title="Usage"
      actions={
        <a class="button" data-testid="usage-csv" href={`/v1/usage.csv${q}`} download="usage.csv">
          Download CSV
        </a>
      }
    >
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          From (UTC)
          <input type="date" name="from" value={from} onChange={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          To (UTC, exclusive)
          <input type="date" name="to" value={to} onChange={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorBox error={error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Workflow</th>
            <th scope="col">Stage</th>
            <th scope="col" class="num">GPU-hours</th>
            <th scope="col" class="num">VRAM GiB-hours</th>
            <th scope="col" class="num">Attempts</th>
          </tr>
        </thead>
        <tbody>
          {(data?.rows ?? []).map((r) => (
            <tr data-testid="usage-row">
              <td>{r.tenant}</td>
              <td>{r.workflow}</td>
              <td class="mono">{r.stage}</td>
              <td class="num" title={`${r.gpuSeconds.toFixed(1)} GPU-seconds`}>{(r.gpuSeconds / 3600).toFixed(3)}</td>
              <td class="num" title={`${r.vramGiBSeconds.toFixed(1)} GiB-seconds`}>{(r.vramGiBSeconds / 3600).toFixed(3)}</td>
              <td class="num">{r.attempts}</td>
            </tr>
          ))}
        </tbody>
        {data && data.rows.length > 0 ? (
          <tfoot>
            <tr>
              <th scope="row" colSpan={3}>Total</th>
              <td class="num">{(total.gpu / 3600).toFixed(3)}</td>
              <td class="num">{(total.vram / 3600).toFixed(3)}</td>
              <td />
            </tr>
          </tfoot>
        ) : null}
      </table>
    </Page>
  );
}
