/** The run page's DAG: what dagre is given, and that its layout keeps edges pointing from a need to its stage. */
import { describe, expect, it } from "vitest";
import { DAGRE_MAX_LAYOUT_NODES, dagInput, dagreLayout, edgePath, layeredLayout, layoutDag, longestPathRanks } from "../../ui/src/lib/dag.ts";

describe("dagInput", () => {
  const stages = [
    { id: "a", status: "succeeded" },
    { id: "b", status: "running", needs: ["a"] },
    { id: "c", status: "waiting", needs: ["a", "b"] },
  ];

  it("uses the API's edges when given, dropping duplicates and edges to stages the run lacks", () => {
    const input = dagInput(stages, [
      { from: "a", to: "b" },
      { from: "a", to: "b" },
      { from: "b", to: "c" },
      { from: "ghost", to: "c" },
    ]);
    expect(input.edges).toEqual([
      { from: "a", to: "b" },
      { from: "b", to: "c" },
    ]);
    expect(input.nodes.map((n) => [n.id, n.status])).toEqual([
      ["a", "succeeded"],
      ["b", "running"],
      ["c", "waiting"],
    ]);
  });

  it("derives the edges from needs when the API sends none", () => {
    expect(dagInput(stages, undefined).edges).toEqual([
      { from: "a", to: "b" },
      { from: "a", to: "c" },
      { from: "b", to: "c" },
    ]);
  });

  it("sizes nodes to their labels, with a minimum", () => {
    const [short, long] = dagInput([{ id: "a", status: "x" }, { id: "a-very-long-stage-name", status: "x" }]).nodes;
    expect(short!.width).toBe(72);
    expect(long!.width).toBeGreaterThan(150);
  });
});

describe("layoutDag", () => {
  it("lays a chain out left to right inside its bounds", () => {
    const laid = layoutDag(dagInput([{ id: "a", status: "s" }, { id: "b", status: "s", needs: ["a"] }, { id: "c", status: "s", needs: ["b"] }]));
    const x = Object.fromEntries(laid.nodes.map((n) => [n.id, n.x]));
    expect(x.a!).toBeLessThan(x.b!);
    expect(x.b!).toBeLessThan(x.c!);
    for (const n of laid.nodes) {
      expect(n.x - n.width / 2).toBeGreaterThanOrEqual(0);
      expect(n.x + n.width / 2).toBeLessThanOrEqual(laid.width);
    }
    expect(laid.edges).toHaveLength(2);
    expect(laid.edges[0]!.points.length).toBeGreaterThanOrEqual(2);
  });

  it("lays out 200 stages with long edges within the page's one-second budget", () => {
    // Every stage needs the two ten before it and the first one: ~600 edges, many spanning several ranks,
    // which took dagre several seconds here.
    const stages = Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, status: "waiting", needs: i < 10 ? [] : [`s${i - 10}`, `s${i - 9}`, "s0"] }));
    const started = performance.now();
    const laid = layoutDag(dagInput(stages));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(laid.nodes).toHaveLength(200);
    expect(laid.edges).toHaveLength(new Set(stages.flatMap((s) => s.needs.map((n) => `${n}>${s.id}`))).size);
  });

  it("uses dagre for small graphs", () => {
    const input = dagInput([{ id: "a", status: "s" }, { id: "b", status: "s", needs: ["a"] }]);
    expect(layoutDag(input)).toEqual(dagreLayout(input));
  });
});

describe("layeredLayout (large graphs)", () => {
  const stages = Array.from({ length: DAGRE_MAX_LAYOUT_NODES + 40 }, (_, i) => ({ id: `s${i}`, status: "waiting", needs: i === 0 ? [] : [`s${Math.floor((i - 1) / 2)}`, ...(i > 5 ? ["s1"] : [])] }));
  const input = dagInput(stages);
  const laid = layeredLayout(input);
  const at = new Map(laid.nodes.map((n) => [n.id, n]));

  it("ranks each stage after the longest chain of its needs", () => {
    const ranks = longestPathRanks(input);
    expect([ranks.get("s0"), ranks.get("s1"), ranks.get("s3"), ranks.get("s6")]).toEqual([0, 1, 2, 2]);
  });

  it("draws every edge from left to right, between the facing sides of its nodes", () => {
    for (const e of laid.edges) {
      const a = at.get(e.from)!, b = at.get(e.to)!;
      expect(a.x).toBeLessThan(b.x);
      expect(e.points[0]).toEqual({ x: a.x + a.width / 2, y: a.y });
      expect(e.points.at(-1)).toEqual({ x: b.x - b.width / 2, y: b.y });
    }
  });

  it("never overlaps two nodes, and keeps them all inside its bounds", () => {
    const boxes = laid.nodes.map((n) => ({ l: n.x - n.width / 2, r: n.x + n.width / 2, t: n.y - n.height / 2, b: n.y + n.height / 2 }));
    const overlapping: string[] = [];
    for (const [i, p] of boxes.entries()) {
      expect(p.l >= 0 && p.t >= 0 && p.r <= laid.width && p.b <= laid.height, laid.nodes[i]!.id).toBe(true);
      for (const [j, q] of boxes.entries()) if (j > i && !(p.r <= q.l || q.r <= p.l || p.b <= q.t || q.b <= p.t)) overlapping.push(`${laid.nodes[i]!.id}/${laid.nodes[j]!.id}`);
    }
    expect(overlapping).toEqual([]);
  });

  it("writes SVG path data through the points", () => {
    expect(edgePath([{ x: 1, y: 2 }, { x: 3.25, y: 4 }])).toBe("M1.0,2.0 L3.3,4.0");
  });
});
