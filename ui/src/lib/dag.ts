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

/**
 * Above this many layout nodes (stages plus the virtual nodes dagre adds where an edge spans several ranks),
 * dagre's crossing minimisation takes seconds on a small machine (200 stages with long edges: 1.5–7 s
 * measured); the page's budget for a run of 200 stages is one second, so larger graphs get `layeredLayout`.
 */
export const DAGRE_MAX_LAYOUT_NODES = 160;

const NODESEP = 14;
const RANKSEP = 48;
const MARGIN = 8;

/** Left-to-right layered layout; coordinates are node centres, as dagre gives them. */
export function layoutDag(input: DagInput): LaidOutDag {
  const ranks = longestPathRanks(input);
  const virtual = input.edges.reduce((n, e) => n + Math.max(0, ranks.get(e.to)! - ranks.get(e.from)! - 1), 0);
  return input.nodes.length + virtual <= DAGRE_MAX_LAYOUT_NODES ? dagreLayout(input) : layeredLayout(input, ranks);
}

export function dagreLayout(input: DagInput): LaidOutDag {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: NODESEP, ranksep: RANKSEP, marginx: MARGIN, marginy: MARGIN });
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

/** Each stage's rank: the longest chain of needs before it (a stage with no needs is rank 0). */
export function longestPathRanks(input: DagInput): Map<string, number> {
  const rank = new Map(input.nodes.map((n) => [n.id, 0]));
  const out = new Map<string, string[]>(input.nodes.map((n) => [n.id, []]));
  const indegree = new Map(input.nodes.map((n) => [n.id, 0]));
  for (const e of input.edges) {
    out.get(e.from)!.push(e.to);
    indegree.set(e.to, indegree.get(e.to)! + 1);
  }
  const queue = input.nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i]!;
    for (const to of out.get(id)!) {
      rank.set(to, Math.max(rank.get(to)!, rank.get(id)! + 1));
      indegree.set(to, indegree.get(to)! - 1);
      if (indegree.get(to) === 0) queue.push(to);
    }
  }
  return rank;
}

/**
 * A fast layered layout for large graphs (linear in the edges per sweep): longest-path ranks as columns,
 * a few barycentre sweeps to order each column against its neighbours, and straight edges. It crosses more
 * edges than dagre's, and long edges may pass behind nodes; it draws 200 stages in milliseconds.
 */
export function layeredLayout(input: DagInput, ranks: Map<string, number> = longestPathRanks(input)): LaidOutDag {
  const byId = new Map(input.nodes.map((n) => [n.id, n]));
  const columns: string[][] = [];
  for (const n of input.nodes) (columns[ranks.get(n.id)!] ??= []).push(n.id);
  const preds = new Map<string, string[]>(input.nodes.map((n) => [n.id, []]));
  const succs = new Map<string, string[]>(input.nodes.map((n) => [n.id, []]));
  for (const e of input.edges) {
    preds.get(e.to)!.push(e.from);
    succs.get(e.from)!.push(e.to);
  }
  const position = new Map<string, number>();
  const index = () => columns.forEach((col) => col.forEach((id, i) => position.set(id, i / Math.max(1, col.length - 1))));
  index();
  const sweep = (col: string[], neighbours: Map<string, string[]>) => {
    const key = new Map(col.map((id) => {
      const ns = neighbours.get(id)!;
      return [id, ns.length === 0 ? position.get(id)! : ns.reduce((a, n) => a + position.get(n)!, 0) / ns.length];
    }));
    col.sort((a, b) => key.get(a)! - key.get(b)!);
  };
  // Down then up, each column ordered by the mean position of its neighbours in the column just placed.
  for (let iter = 0; iter < 4; iter++) {
    for (let r = 1; r < columns.length; r++) {
      sweep(columns[r] ?? [], preds);
      index();
    }
    for (let r = columns.length - 2; r >= 0; r--) {
      sweep(columns[r] ?? [], succs);
      index();
    }
  }
  const columnHeight = (col: string[]) => col.reduce((h, id) => h + byId.get(id)!.height, 0) + NODESEP * Math.max(0, col.length - 1);
  const height = Math.max(0, ...columns.map((c) => columnHeight(c ?? []))) + 2 * MARGIN;
  const placed = new Map<string, { x: number; y: number }>();
  let x = MARGIN;
  for (const col of columns) {
    if (!col) continue;
    const w = Math.max(...col.map((id) => byId.get(id)!.width));
    let y = (height - columnHeight(col)) / 2;
    for (const id of col) {
      const n = byId.get(id)!;
      placed.set(id, { x: x + w / 2, y: y + n.height / 2 });
      y += n.height + NODESEP;
    }
    x += w + RANKSEP;
  }
  return {
    width: Math.ceil(x - RANKSEP + MARGIN),
    height: Math.ceil(height),
    nodes: input.nodes.map((n) => ({ ...n, ...placed.get(n.id)! })),
    edges: input.edges.map((e) => {
      const a = placed.get(e.from)!, b = placed.get(e.to)!;
      return { ...e, points: [{ x: a.x + byId.get(e.from)!.width / 2, y: a.y }, { x: b.x - byId.get(e.to)!.width / 2, y: b.y }] };
    }),
  };
}

/** SVG path data through an edge's points. */
export function edgePath(points: readonly { x: number; y: number }[]): string {
  return points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");
}

/** Stage states in the order the legend lists them. The colours live in the stylesheet (class `st-<status>`). */
export const STAGE_STATES = ["waiting", "ready", "placed", "running", "sealing", "succeeded", "failed", "cancelled"] as const;
