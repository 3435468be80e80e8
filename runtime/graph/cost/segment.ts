/**
 * GPU-affine segmentation of a ComfyUI graph. Nodes joined by links that carry GPU-resident data
 * (MODEL, CLIP, VAE, LATENT, CONDITIONING, …) must run on one GPU, so they are grouped with union-find;
 * links that carry portable data (IMAGE, MASK, AUDIO, strings, numbers) may cross between groups.
 * Grouping can make groups depend on each other in a circle (A → B and B → C by IMAGE while A and C
 * share a MODEL), so strongly connected groups are merged until the groups form a DAG. Each group
 * becomes one schedulable stage.
 */
import type { ComfyNode, Stage } from "../model.ts";
import { CostModel, type NodeEstimate } from "./cost-model.ts";
import { SAMPLER_CLASS_TYPES } from "./node-costs.ts";
import { isGpuAffine, outputType } from "./output-types.ts";

/** CPU-only groups at most this long are folded into their neighbour instead of becoming a stage. */
export const FOLD_MAX_SECONDS = 2;

export interface SegmentedGraph {
  /** Stages in a topological order, one per segment. */
  readonly stages: Stage[];
  /** Estimates of every node, by node id. */
  readonly estimates: ReadonlyMap<string, NodeEstimate>;
  /** Stage id of every node. */
  readonly stageOf: ReadonlyMap<string, string>;
}

/** Orders node ids the way people read them: "2" < "10" < "57:8" < "57:10". */
export function compareNodeIds(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (i % 2 === 1) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
      return x.length - y.length;
    }
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

class UnionFind {
  private readonly parent: Int32Array;

  constructor(size: number) {
    this.parent = new Int32Array(size);
    for (let i = 0; i < size; i++) this.parent[i] = i;
  }

  find(x: number): number {
    let root = x;
    while (this.parent[root] !== root) root = this.parent[root]!;
    // Path compression, iteratively.
    while (this.parent[x] !== root) {
      const next = this.parent[x]!;
      this.parent[x] = root;
      x = next;
    }
    return root;
  }

  /** Joins two sets; the smaller index becomes the root so results do not depend on link order. */
  union(a: number, b: number): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
    return true;
  }
}

interface Quotient {
  /** Root node index of every segment. */
  readonly roots: number[];
  readonly successors: Map<number, Set<number>>;
  readonly predecessors: Map<number, Set<number>>;
}

function quotient(edges: readonly (readonly [number, number])[], size: number, sets: UnionFind): Quotient {
  const roots: number[] = [];
  const successors = new Map<number, Set<number>>();
  const predecessors = new Map<number, Set<number>>();
  for (let i = 0; i < size; i++) {
    if (sets.find(i) === i) {
      roots.push(i);
      successors.set(i, new Set());
      predecessors.set(i, new Set());
    }
  }
  for (const [from, to] of edges) {
    const a = sets.find(from);
    const b = sets.find(to);
    if (a === b) continue;
    successors.get(a)!.add(b);
    predecessors.get(b)!.add(a);
  }
  return { roots, successors, predecessors };
}

/** Strongly connected components with more than one member (Tarjan's algorithm, iterative). */
export function nonTrivialComponents(roots: readonly number[], successors: ReadonlyMap<number, ReadonlySet<number>>): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const components: number[][] = [];
  let counter = 0;
  for (const start of roots) {
    if (index.has(start)) continue;
    const work: { node: number; next: Iterator<number> }[] = [];
    const enter = (node: number) => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, next: successors.get(node)!.values() });
    };
    enter(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const step = frame.next.next();
      if (!step.done) {
        const w = step.value;
        if (!index.has(w)) enter(w);
        else if (onStack.has(w)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: number[] = [];
        let member: number;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1) components.push(component);
      }
    }
  }
  return components;
}

/** Splits a ComfyUI graph into GPU-affine stages. */
export function segmentComfyGraph(nodes: readonly ComfyNode[], costModel: CostModel = new CostModel()): SegmentedGraph {
  const estimates = costModel.estimateNodes(nodes);
  const indexOf = new Map(nodes.map((n, i) => [n.id, i]));
  const sets = new UnionFind(nodes.length);
  const portableEdges: [number, number][] = [];
  nodes.forEach((node, i) => {
    for (const link of node.links) {
      const from = indexOf.get(link.from);
      if (from === undefined) continue; // the importer refuses dangling links; stay total anyway
      if (isGpuAffine(outputType(nodes[from]!.classType, link.output))) sets.union(from, i);
      else portableEdges.push([from, i]);
    }
  });

  mergeCircles(portableEdges, nodes.length, sets);
  foldSmallCpuSegments(nodes, estimates, portableEdges, sets);
  // Folding cannot close a circle (see there); checking again costs one linear pass and keeps it so.
  mergeCircles(portableEdges, nodes.length, sets);
  return buildStages(nodes, estimates, portableEdges, sets);
}

/** Contracting GPU-affine links can close circles between segments: merge each circle into one, until none is left. */
function mergeCircles(edges: readonly (readonly [number, number])[], size: number, sets: UnionFind): void {
  for (;;) {
    const q = quotient(edges, size, sets);
    const circles = nonTrivialComponents(q.roots, q.successors);
    if (circles.length === 0) return;
    for (const members of circles) for (const m of members.slice(1)) sets.union(members[0]!, m);
  }
}

/**
 * A short CPU-only segment (a SaveImage, a parameter, a resize) is not worth a stage and a data
 * transfer of its own: fold it into its only upstream segment, or, when it has none, into its only
 * downstream one. Neither fold can close a circle: a segment with one predecessor is reachable only
 * through it, and one with no predecessor and one successor only leads there.
 */
function foldSmallCpuSegments(nodes: readonly ComfyNode[], estimates: ReadonlyMap<string, NodeEstimate>, edges: readonly (readonly [number, number])[], sets: UnionFind): void {
  for (let changed = true; changed; ) {
    changed = false;
    const q = quotient(edges, nodes.length, sets);
    const gpu = new Map<number, boolean>();
    const seconds = new Map<number, number>();
    nodes.forEach((node, i) => {
      const root = sets.find(i);
      const e = estimates.get(node.id)!;
      gpu.set(root, (gpu.get(root) ?? false) || e.gpu);
      seconds.set(root, (seconds.get(root) ?? 0) + e.durationS);
    });
    for (const root of q.roots) {
      if (gpu.get(root) || seconds.get(root)! > FOLD_MAX_SECONDS) continue;
      const preds = q.predecessors.get(root)!;
      const succs = q.successors.get(root)!;
      let target: number | undefined;
      if (preds.size === 1) target = [...preds][0];
      else if (preds.size === 0 && succs.size === 1) target = [...succs][0];
      if (target === undefined) continue;
      // Folds found on one quotient can be applied together: each keeps its own no-circle guarantee.
      sets.union(root, target);
      changed = true;
    }
  }
}

function slug(text: string, max: number): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, max)
      .replace(/-+$/, "") || "node"
  );
}

function buildStages(nodes: readonly ComfyNode[], estimates: ReadonlyMap<string, NodeEstimate>, edges: readonly (readonly [number, number])[], sets: UnionFind): SegmentedGraph {
  const q = quotient(edges, nodes.length, sets);
  const members = new Map<number, ComfyNode[]>(q.roots.map((r) => [r, []]));
  nodes.forEach((node, i) => members.get(sets.find(i))!.push(node));
  for (const list of members.values()) list.sort((a, b) => compareNodeIds(a.id, b.id));

  // Name every segment after its heaviest node and its first node id.
  const stageIds = new Map<number, string>();
  const taken = new Set<string>();
  const orderedRoots = [...q.roots].sort((a, b) => compareNodeIds(members.get(a)![0]!.id, members.get(b)![0]!.id));
  for (const root of orderedRoots) {
    const list = members.get(root)!;
    const main = mainNode(list, estimates);
    let id = `${slug(main.classType, 40)}-${slug(list[0]!.id, 20)}`;
    for (let n = 2; taken.has(id); n++) id = `${slug(main.classType, 40)}-${slug(list[0]!.id, 20)}-${n}`;
    taken.add(id);
    stageIds.set(root, id);
  }

  // Topological order; among ready segments, the one whose first node id reads first.
  const indegree = new Map(q.roots.map((r) => [r, q.predecessors.get(r)!.size]));
  const ready = orderedRoots.filter((r) => indegree.get(r) === 0);
  const rank = new Map(orderedRoots.map((r, i) => [r, i]));
  const order: number[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => rank.get(b)! - rank.get(a)!);
    const next = ready.pop()!;
    order.push(next);
    for (const s of q.successors.get(next)!) {
      const left = indegree.get(s)! - 1;
      indegree.set(s, left);
      if (left === 0) ready.push(s);
    }
  }
  if (order.length !== q.roots.length) throw new Error("segmentation left a cycle between segments");

  const stageOf = new Map<string, string>();
  const stages: Stage[] = order.map((root) => {
    const list = members.get(root)!;
    const id = stageIds.get(root)!;
    for (const n of list) stageOf.set(n.id, id);
    return segmentStage(id, list, estimates, [...q.predecessors.get(root)!].sort((a, b) => rank.get(a)! - rank.get(b)!).map((p) => stageIds.get(p)!));
  });
  return { stages, estimates, stageOf };
}

const SAMPLERS = new Set(SAMPLER_CLASS_TYPES);

/** The node a segment is about: its longest sampler, else its longest GPU node, else its longest node. */
function mainNode(list: readonly ComfyNode[], estimates: ReadonlyMap<string, NodeEstimate>): ComfyNode {
  let best = list[0]!;
  let bestScore = -1;
  for (const node of list) {
    const e = estimates.get(node.id)!;
    const score = (SAMPLERS.has(node.classType) ? 2e9 : e.gpu ? 1e9 : 0) + e.durationS;
    if (score > bestScore) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

function segmentStage(id: string, list: readonly ComfyNode[], estimates: ReadonlyMap<string, NodeEstimate>, needs: string[]): Stage {
  const nodeEstimates = list.map((n) => estimates.get(n.id)!);
  const gpu = nodeEstimates.some((e) => e.gpu);
  // Weights stay resident for the whole segment; activations peak one node at a time.
  const loads = new Map<string, { sizeMiB: number; loadS: number; kind: string }>();
  for (const e of nodeEstimates) for (const m of e.loads) if (!loads.has(m.name)) loads.set(m.name, m);
  const residentMiB = [...loads.values()].reduce((sum, m) => sum + m.sizeMiB, 0);
  const peakWorkingMiB = Math.max(0, ...nodeEstimates.map((e) => e.vramMiB));
  const durationS = nodeEstimates.reduce((sum, e) => sum + e.durationS, 0);
  const modelLoadS = [...loads.values()].reduce((sum, m) => sum + m.loadS, 0);
  const model = mainModel(loads, list, estimates);
  return {
    id,
    needs,
    resources: { gpus: gpu ? 1 : 0, vramMiB: gpu ? residentMiB + peakWorkingMiB : 0, ...(model !== undefined && { model }) },
    estimate: { durationS: round3(durationS), modelLoadS: round3(modelLoadS) },
    comfyNodes: list.map((n) => n.id),
  };
}

/** The segment's main model: its largest diffusion model or language model, else its largest model, else its main node's. */
function mainModel(loads: ReadonlyMap<string, { sizeMiB: number; kind: string }>, list: readonly ComfyNode[], estimates: ReadonlyMap<string, NodeEstimate>): string | undefined {
  const bySize = [...loads.entries()].sort((a, b) => b[1].sizeMiB - a[1].sizeMiB || (a[0] < b[0] ? -1 : 1));
  const primary = bySize.find(([, m]) => m.kind === "diffusion" || m.kind === "llm") ?? bySize[0];
  return primary ? primary[0] : estimates.get(mainNode(list, estimates).id)!.model;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
