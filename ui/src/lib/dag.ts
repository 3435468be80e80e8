/** The run page's DAG: the input handed to dagre (nodes sized from their labels, edges from the API) and its layout. */
import dagre from "@dagrejs/dagre";

export interface StageInput {
  readonly id: string;
  readonly status: string;
  readonly needs?: readonly string[];
}

export interface EdgeInput {
  readonly from: string;
  readonly to: string;
}

export interface DagInput {
  readonly nodes: readonly { id: string; status: string; width: number; height: number }[];
  readonly edges: readonly EdgeInput[];
}

export const NODE_HEIGHT = 34;
const CHAR_WIDTH = 7.2;

/**
 * Nodes and edges for dagre. The run's `edges` are used when the API sends them; an older agent sends only each
 * stage's `needs`, from which the same edges follow. Edges naming a stage the run does not have are dropped
 * (dagre would invent a node for them), as are duplicates.
 */
export function dagInput(stages: readonly StageInput[], edges?: readonly EdgeInput[] | null): DagInput {
  const ids = new Set(stages.map((s) => s.id));
  const source = edges ?? stages.flatMap((s) => (s.needs ?? []).map((from) => ({ from, to: s.id })));
  const seen = new Set<string>();
  const kept: EdgeInput[] = [];
  for (const e of source) {
    const key = `${e.from}\u0000${e.to}`;
    if (!ids.has(e.from) || !ids.has(e.to) || seen.has(key)) continue;
    seen.add(key);
    kept.push({ from: e.from, to: e.to });
  }
  return {
    nodes: stages.map((s) => ({ id: s.id, status: s.status, width: Math.max(72, Math.ceil(s.id.length * CHAR_WIDTH) + 28), height: NODE_HEIGHT })),
    edges: kept,
  };
}

export interface LaidOutDag {
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly { id: string; status: string; x: number; y: number; width: number; height: number }[];
  readonly edges: readonly { from: string; to: string; points: readonly { x: number; y: number }[] }[];
}

/** Left-to-right layered layout; coordinates are node centres, as dagre gives them. */
export function layoutDag(input: DagInput): LaidOutDag {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 14, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of input.nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const e of input.edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const graph = g.graph();
  return {
    width: Math.ceil(graph.width ?? 0),
    height: Math.ceil(graph.height ?? 0),
    nodes: input.nodes.map((n) => {
      const p = g.node(n.id);
      return { ...n, x: p.x, y: p.y };
    }),
    edges: input.edges.map((e) => ({ ...e, points: (g.edge(e.from, e.to)?.points ?? []).map((p: { x: number; y: number }) => ({ x: p.x, y: p.y })) })),
  };
}

/** SVG path data through an edge's points. */
export function edgePath(points: readonly { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
}

/** Stage states in the order the legend lists them. The colours live in the stylesheet (class `st-<status>`). */
export const STAGE_STATES = ["waiting", "ready", "placed", "running", "sealing", "succeeded", "failed", "cancelled"] as const;
