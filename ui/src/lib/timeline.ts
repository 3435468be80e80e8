/**
 * The run page's timeline as pure geometry: one lane per GPU, one bar per attempt per GPU it used, each bar cut
 * into the phases the API reports (queue wait, model load, execution, sealing). Positions are percentages of
 * the lane's width, so the page lays them out with `left`/`width` and no measurement.
 */

export interface Phases {
  readonly queuedAt: string | null;
  readonly placedAt: string | null;
  readonly loadStartedAt: string | null;
  readonly runningAt: string | null;
  readonly sealingAt: string | null;
  readonly finishedAt: string | null;
}

export interface AttemptInput {
  readonly stageId: string;
  readonly number: number;
  readonly status: string;
  readonly gpus: readonly string[];
  readonly node?: string | null;
  readonly phases: Phases;
  readonly peakVramMiB?: number | null;
  readonly reason?: string | null;
}

export type PhaseName = "queue" | "load" | "execute" | "seal";

export interface Span {
  readonly phase: PhaseName;
  /** Epoch milliseconds. */
  readonly start: number;
  readonly end: number;
}

export interface Segment extends Span {
  /** Percent of the bar's own width. */
  readonly left: number;
  readonly width: number;
}

export interface Bar {
  readonly stageId: string;
  readonly attempt: number;
  readonly status: string;
  readonly start: number;
  readonly end: number;
  /** Percent of the lane's width. */
  readonly left: number;
  readonly width: number;
  readonly segments: readonly Segment[];
  readonly title: string;
}

export interface Lane {
  readonly gpu: string;
  readonly node: string | null;
  readonly bars: readonly Bar[];
}

export interface Tick {
  readonly at: number;
  readonly left: number;
  readonly label: string;
}

export interface TimelineModel {
  readonly start: number;
  readonly end: number;
  readonly lanes: readonly Lane[];
  readonly ticks: readonly Tick[];
}

const PHASE_LABEL: Readonly<Record<PhaseName, string>> = { queue: "queue wait", load: "model load", execute: "execution", seal: "sealing" };

function ms(iso: string | null): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/**
 * The spans of one attempt. Each phase runs from its start to its own end; a phase whose end is not recorded
 * yet ends at the next recorded phase, else at finishedAt, else (the attempt still going) at `now`.
 */
export function phaseSpans(phases: Phases, now: number): Span[] {
  const queuedAt = ms(phases.queuedAt), placedAt = ms(phases.placedAt), loadAt = ms(phases.loadStartedAt);
  const runningAt = ms(phases.runningAt), sealingAt = ms(phases.sealingAt), finishedAt = ms(phases.finishedAt);
  const open = finishedAt ?? now;
  const first = (...xs: (number | null)[]) => xs.find((x): x is number => x !== null) ?? open;
  const raw: [PhaseName, number | null, number][] = [
    ["queue", queuedAt, first(placedAt, loadAt, runningAt, sealingAt)],
    ["load", loadAt, first(runningAt, sealingAt)],
    ["execute", runningAt, first(sealingAt)],
    ["seal", sealingAt, open],
  ];
  const spans: Span[] = [];
  for (const [phase, start, end] of raw) if (start !== null) spans.push({ phase, start, end: Math.max(start, end) });
  return spans;
}

/** The lane of attempts that held no GPU: not a GPU id (ids are names without parentheses), sorted after the GPUs. */
export const NO_GPU_LANE = "(no GPU)";

/** Every attempt's bar on each GPU it used, lanes sorted by GPU id, bars by start; the axis spans them all. */
export function timelineModel(attempts: readonly AttemptInput[], now: number, gpuNodes: ReadonlyMap<string, string> = new Map()): TimelineModel {
  const perAttempt = attempts.map((a) => ({ a, spans: phaseSpans(a.phases, now) })).filter((x) => x.spans.length > 0 && (x.a.gpus.length > 0 || x.a.phases.placedAt != null));
  let start = Infinity, end = -Infinity;
  for (const { spans } of perAttempt) {
    start = Math.min(start, spans[0]!.start);
    end = Math.max(end, ...spans.map((s) => s.end));
  }
  if (!Number.isFinite(start)) return { start: now, end: now, lanes: [], ticks: [] };
  // A run of zero length still gets a drawable axis.
  if (end - start < 1000) end = start + 1000;
  const total = end - start;
  const lanes = new Map<string, Bar[]>();
  const nodes = new Map<string, string | null>();
  for (const { a, spans } of perAttempt) {
    const barStart = spans[0]!.start;
    const barEnd = Math.max(...spans.map((s) => s.end));
    const width = barEnd - barStart;
    const segments = spans.map((s) => ({
      ...s,
      left: width === 0 ? 0 : ((s.start - barStart) / width) * 100,
      width: width === 0 ? 100 / spans.length : ((s.end - s.start) / width) * 100,
    }));
    const title = [
      `${a.stageId} attempt ${a.number} (${a.status})`,
      ...spans.map((s) => `${PHASE_LABEL[s.phase]}: ${((s.end - s.start) / 1000).toFixed(1)} s`),
      ...(a.peakVramMiB != null ? [`peak VRAM ${a.peakVramMiB} MiB`] : []),
      ...(a.reason ? [a.reason] : []),
    ].join("\n");
    // A stage that holds no GPU (a CPU step such as assembling a contact sheet) still gets its bar, on a lane of its own.
    for (const gpu of a.gpus.length > 0 ? a.gpus : [NO_GPU_LANE]) {
      if (!lanes.has(gpu)) lanes.set(gpu, []);
      if (!nodes.has(gpu)) nodes.set(gpu, a.node ?? gpuNodes.get(gpu) ?? null);
      lanes.get(gpu)!.push({
        stageId: a.stageId,
        attempt: a.number,
        status: a.status,
        start: barStart,
        end: barEnd,
        left: ((barStart - start) / total) * 100,
        width: (width / total) * 100,
        segments,
        title,
      });
    }
  }
  return {
    start,
    end,
    lanes: [...lanes.entries()]
      .sort(([x], [y]) => (x === NO_GPU_LANE ? 1 : 0) - (y === NO_GPU_LANE ? 1 : 0) || x.localeCompare(y, undefined, { numeric: true }))
      .map(([gpu, bars]) => ({ gpu, node: nodes.get(gpu) ?? null, bars: bars.sort((x, y) => x.start - y.start) })),
    ticks: axisTicks(start, end),
  };
}

const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400];

/** About `target` evenly spaced ticks at a round step, labelled as time since the start (0 s, 30 s, 1 m …). */
export function axisTicks(start: number, end: number, target = 6): Tick[] {
  const total = end - start;
  if (!(total > 0)) return [];
  const stepS = STEPS_S.find((s) => (total / 1000) / s <= target) ?? STEPS_S[STEPS_S.length - 1]!;
  const ticks: Tick[] = [];
  for (let t = 0; t <= total + 1e-6; t += stepS * 1000) ticks.push({ at: start + t, left: (t / total) * 100, label: elapsedLabel(t / 1000) });
  return ticks;
}

function elapsedLabel(s: number): string {
  if (s === 0) return "0";
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 === 0 ? `${s / 60} m` : `${Math.floor(s / 60)} m ${s % 60} s`;
  return s % 3600 === 0 ? `${s / 3600} h` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
}
