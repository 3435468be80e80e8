/** One lane per GPU; a bar per attempt per GPU, cut into queue / load / execute / seal segments, over a time axis. */
import { useMemo } from "preact/hooks";
import { timelineModel, type AttemptInput } from "../lib/timeline.ts";
import { formatTime } from "../lib/format.ts";

const PHASES = [
  ["queue", "queue wait"],
  ["load", "model load"],
  ["execute", "execution"],
  ["seal", "sealing"],
] as const;

export function RunTimeline({ attempts, now, onSelect }: { attempts: readonly AttemptInput[]; now: number; onSelect: (stageId: string) => void }) {
  // Recomputed when the attempts or the clock change, not on every render of the page (a stage picked, a log read).
  const model = useMemo(() => timelineModel(attempts, now), [attempts, now]);
  return (
    <div class="timeline" data-testid="timeline">
      <ul class="legend" aria-label="phases">
        {PHASES.map(([p, label]) => (
          <li>
            <span class={`swatch ph-${p}`} aria-hidden="true" />
            {label}
          </li>
        ))}
      </ul>
      {model.lanes.length === 0 ? <p class="empty">No attempt has been placed on a GPU yet.</p> : null}
      {model.lanes.map((lane) => (
        <div class="lane" data-testid="timeline-lane" data-gpu={lane.gpu}>
          <div class="lane-label" title={lane.node ? `node ${lane.node}` : undefined}>
            {lane.gpu}
          </div>
          <div class="lane-track">
            {lane.bars.map((bar) => (
              <div
                class={`tl-bar st-${bar.status}`}
                data-testid="timeline-bar"
                data-stage-id={bar.stageId}
                data-attempt={bar.attempt}
                title={bar.title}
                style={{ left: `${bar.left}%`, width: `max(${bar.width}%, 3px)` }}
                onClick={() => onSelect(bar.stageId)}
              >
                {bar.segments.map((s) => (
                  <span class={`seg ph-${s.phase}`} data-phase={s.phase} style={{ left: `${s.left}%`, width: `${s.width}%` }} />
                ))}
              </div>
            ))}
          </div>
        </div>
      ))}
      {model.lanes.length > 0 ? (
        <div class="axis" aria-label={`from ${formatTime(new Date(model.start).toISOString())}`}>
          <div class="lane-label" />
          <div class="lane-track">
            {model.ticks.map((t) => (
              <span class="tick" style={{ left: `${t.left}%` }}>
                {t.label}
              </span>
            ))}
          </div>
        </div>
      ) : null}
    </div>
  );
}
