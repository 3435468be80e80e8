/** Fair share: per tenant, share against weight, quota use, and queued GPU-seconds by priority class. */
import { ErrorBox, Page, useApi } from "../components.tsx";
import { formatDuration, formatMiB, formatPercent } from "../lib/format.ts";

interface Row {
  readonly tenant: string;
  readonly weight: number;
  readonly share: number;
  readonly quota: { gpus: number | null; vramMiB: number | null; usedGpus: number; usedVramMiB: number } | null;
  readonly queuedGpuSeconds: Readonly<Record<string, number>>;
}

export function FairSharePage() {
  const { data, error } = useApi<{ tenants: Row[] }>("/v1/fairshare", 5000);
  const classes = [...new Set((data?.tenants ?? []).flatMap((t) => Object.keys(t.queuedGpuSeconds)))];
  const totalWeight = (data?.tenants ?? []).reduce((n, t) => n + t.weight, 0);
  return (
    <Page title="Fair share">
      <ErrorBox error={error} />
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Weight</th>
            <th scope="col">Share of GPUs</th>
            <th scope="col">Quota GPUs</th>
            <th scope="col">Quota VRAM</th>
            {classes.map((c) => (
              <th scope="col">Queued {c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {(data?.tenants ?? []).map((t) => (
            <tr data-testid="fairshare-row" data-tenant={t.tenant}>
              <td>{t.tenant}</td>
              <td>
                {t.weight} <span class="muted">({formatPercent(totalWeight ? t.weight / totalWeight : null)} entitled)</span>
              </td>
              <td>
                <span class="meter" aria-hidden="true">
                  <span style={{ width: `${Math.min(100, t.share * 100)}%` }} />
                </span>
                {formatPercent(t.share)}
              </td>
              <td>{t.quota ? `${t.quota.usedGpus} / ${t.quota.gpus ?? "∞"}` : "no quota"}</td>
              <td>{t.quota ? `${formatMiB(t.quota.usedVramMiB)} / ${t.quota.vramMiB == null ? "∞" : formatMiB(t.quota.vramMiB)}` : "no quota"}</td>
              {classes.map((c) => (
                <td>{formatDuration(t.queuedGpuSeconds[c] ?? 0)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}
