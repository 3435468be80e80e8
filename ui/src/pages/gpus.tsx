/** GPUs by node: each device's VRAM used against total over time (uPlot), resident models, what it runs. */
import uPlot from "uplot";
// uPlot's stylesheet travels with the page that draws charts (its chunk), not with every page.
import "uplot/dist/uPlot.min.css";
import { useEffect, useRef } from "preact/hooks";
import { ErrorBox, Page, SimulatedBadge, useApi } from "../components.tsx";
import { formatMiB } from "../lib/format.ts";
import { runHref } from "../lib/route.ts";

interface Gpu {
  readonly id: string;
  readonly node: string;
  readonly name: string;
  readonly uuid: string;
  readonly simulated: boolean;
  readonly memoryMiB: number;
  readonly usedMiB: number;
  readonly freeMiB: number;
  readonly residentModels: readonly string[];
  readonly running: readonly ({ runId: string; stageId: string; simulated?: boolean } | { tenant: string })[];
}

interface History {
  readonly stepSeconds: number;
  readonly devices: readonly { id: string; node: string; totalMiB: number; simulated: boolean; samples: readonly [number, number, number | null][] }[];
}

export function GpusPage() {
  const gpus = useApi<{ source: string; gpus: Gpu[] }>("/v1/gpus", 5000);
  const history = useApi<History>("/v1/gpus/history?minutes=60", 15000);
  const byNode = new Map<string, Gpu[]>();
  for (const g of gpus.data?.gpus ?? []) byNode.set(g.node, [...(byNode.get(g.node) ?? []), g]);
  return (
    <Page title="GPUs">
      <ErrorBox error={gpus.error} />
      {history.error ? <ErrorBox error={`VRAM history: ${history.error}`} /> : null}
      {gpus.data ? <p class="muted">Inventory from {gpus.data.source}.</p> : null}
      {[...byNode.entries()].map(([node, list]) => (
        <section class="gpu-node" data-testid="gpu-node" data-node={node}>
          <h2>
            Node <span class="mono">{node}</span>
          </h2>
          <div class="cards">
            {list.map((g) => (
              <GpuCard gpu={g} history={history.data?.devices.find((d) => d.id === g.id)?.samples ?? null} />
            ))}
          </div>
        </section>
      ))}
    </Page>
  );
}

function GpuCard({ gpu, history }: { gpu: Gpu; history: readonly [number, number, number | null][] | null }) {
  const used = gpu.memoryMiB > 0 ? gpu.usedMiB / gpu.memoryMiB : 0;
  return (
    <article class="card gpu" data-testid="gpu-card" data-gpu={gpu.id} data-simulated={String(gpu.simulated)}>
      <header>
        <h3 class="mono">{gpu.id}</h3>
        {gpu.simulated ? <SimulatedBadge /> : null}
      </header>
      <p class="muted">{gpu.name}</p>
      <p>
        VRAM {formatMiB(gpu.usedMiB)} / {formatMiB(gpu.memoryMiB)}
        <span class="meter" role="meter" aria-valuemin={0} aria-valuemax={gpu.memoryMiB} aria-valuenow={gpu.usedMiB} aria-label="VRAM used">
          <span style={{ width: `${Math.min(100, used * 100)}%` }} />
        </span>
      </p>
      <VramChart samples={history} totalMiB={gpu.memoryMiB} />
      <dl class="facts small">
        <dt>Resident models</dt>
        <dd>{gpu.residentModels.length ? gpu.residentModels.join(", ") : "none"}</dd>
        <dt>Running</dt>
        <dd>
          {gpu.running.length === 0
            ? "idle"
            : gpu.running.map((r) =>
                "runId" in r ? (
                  <a href={runHref(r.runId)}>
                    {r.stageId} <span class="muted">({r.runId})</span>
                  </a>
                ) : (
                  <span class="muted">a stage of another tenant</span>
                )
              )}
        </dd>
      </dl>
    </article>
  );
}

/** VRAM used (MiB) over the last hour against the device's total, drawn by uPlot. */
function VramChart({ samples, totalMiB }: { samples: readonly [number, number, number | null][] | null; totalMiB: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current || !samples) return;
    const xs = samples.map((s) => s[0]);
    const data: uPlot.AlignedData = [xs, samples.map((s) => s[1]), xs.map(() => totalMiB)];
    if (plot.current) {
      plot.current.setData(data);
      return;
    }
    plot.current = new uPlot(
      {
        width: 280,
        height: 120,
        legend: { show: false },
        cursor: { y: false },
        scales: { y: { range: [0, Math.max(totalMiB, 1)] } },
        axes: [{ size: 28, font: "11px system-ui" }, { size: 44, font: "11px system-ui", values: (_u, vals) => vals.map((v) => (v >= 1024 ? `${(v / 1024).toFixed(0)}G` : `${v}M`)) }],
        series: [
          {},
          { label: "used MiB", stroke: "#2563eb", fill: "rgba(37,99,235,0.12)", width: 1.5, points: { show: false } },
          { label: "total MiB", stroke: "#9ca3af", dash: [4, 4], width: 1, points: { show: false } },
        ],
      },
      data,
      box.current
    );
  }, [samples, totalMiB]);
  useEffect(() => () => plot.current?.destroy(), []);
  return (
    <div class="chart" ref={box} aria-label="VRAM used over the last hour" role="img">
      {samples && samples.length === 0 ? <p class="empty">no samples yet</p> : null}
      {!samples ? <p class="empty">no history</p> : null}
    </div>
  );
}
