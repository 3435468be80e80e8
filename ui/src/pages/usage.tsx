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

// Seconds, as the API and the CSV count them (a dev run's stages use a few GPU-seconds: hours would read 0.000).
const amount = (seconds: number) => seconds.toLocaleString("en-US", { maximumFractionDigits: 1 });
const hours = (seconds: number, unit: string) => `${(seconds / 3600).toLocaleString("en-US", { maximumFractionDigits: 4 })} ${unit}`;

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
            <th scope="col" class="num">GPU-seconds</th>
            <th scope="col" class="num">VRAM GiB-seconds</th>
            <th scope="col" class="num">Attempts</th>
          </tr>
        </thead>
        <tbody>
          {(data?.rows ?? []).map((r) => (
            <tr data-testid="usage-row">
              <td>{r.tenant}</td>
              <td>{r.workflow}</td>
              <td class="mono">{r.stage}</td>
              <td class="num" title={hours(r.gpuSeconds, "GPU-hours")}>{amount(r.gpuSeconds)}</td>
              <td class="num" title={hours(r.vramGiBSeconds, "GiB-hours")}>{amount(r.vramGiBSeconds)}</td>
              <td class="num">{r.attempts}</td>
            </tr>
          ))}
        </tbody>
        {data && data.rows.length > 0 ? (
          <tfoot>
            <tr>
              <th scope="row" colSpan={3}>Total</th>
              <td class="num" title={hours(total.gpu, "GPU-hours")}>{amount(total.gpu)}</td>
              <td class="num" title={hours(total.vram, "GiB-hours")}>{amount(total.vram)}</td>
              <td />
            </tr>
          </tfoot>
        ) : null}
      </table>
    </Page>
  );
}
