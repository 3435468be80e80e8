/** The run's DAG as SVG, laid out by dagre, nodes coloured by stage state, with a legend. */
import { useMemo } from "preact/hooks";
import { dagInput, edgePath, layoutDag, STAGE_STATES } from "../lib/dag.ts";
import type { RunDetail } from "./run-types.ts";

export function RunDag({ run, selected, onSelect }: { run: RunDetail; selected: string | null; onSelect: (id: string) => void }) {
  // The layout depends on the graph's shape only; a status change recolours without laying out again.
  const shape = useMemo(
    () => layoutDag(dagInput(run.stages.map((s) => ({ id: s.id, status: "", needs: s.needs })), run.edges)),
    [run.stages.map((s) => s.id).join("\u0000"), JSON.stringify(run.edges ?? null)]
  );
  const status = new Map(run.stages.map((s) => [s.id, s.status]));
  return (
    <div class="dag-wrap">
      <ul class="legend" aria-label="stage states">
        {STAGE_STATES.map((s) => (
          <li>
            <span class={`swatch st-${s}`} aria-hidden="true" />
            {s}
          </li>
        ))}
      </ul>
      <div class="dag-scroll">
        <svg data-testid="dag" width={shape.width} height={shape.height} viewBox={`0 0 ${shape.width} ${shape.height}`} role="img" aria-label={`DAG of ${run.stages.length} stages`}>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
            </marker>
          </defs>
          {shape.edges.map((e) => (
            <path data-testid="dag-edge" data-from={e.from} data-to={e.to} class="edge" d={edgePath(e.points)} marker-end="url(#arrow)" />
          ))}
          {shape.nodes.map((n) => {
            const st = status.get(n.id) ?? "waiting";
            return (
              <g
                data-testid="dag-node"
                data-stage-id={n.id}
                data-status={st}
                class={`node st-${st}${selected === n.id ? " selected" : ""}`}
                transform={`translate(${n.x - n.width / 2},${n.y - n.height / 2})`}
                onClick={() => onSelect(n.id)}
                tabIndex={0}
                role="button"
                aria-label={`stage ${n.id}: ${st}`}
                onKeyDown={(e) => (e.key === "Enter" || e.key === " ") && onSelect(n.id)}
              >
                <title>{`${n.id}: ${st}`}</title>
                <rect width={n.width} height={n.height} rx="6" />
                <text x={n.width / 2} y={n.height / 2} dominant-baseline="central" text-anchor="middle">
                  {n.id}
                </text>
              </g>
            );
          })}
        </svg>
      </div>
    </div>
  );
}
