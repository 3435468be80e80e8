/** The run page's DAG: what dagre is given, and that its layout keeps edges pointing from a need to its stage. */
import { describe, expect, it } from "vitest";
import { dagInput, edgePath, layoutDag } from "../../ui/src/lib/dag.ts";

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

  it("lays out 200 stages quickly enough for the page's one-second budget", () => {
    const stages = Array.from({ length: 200 }, (_, i) => ({ id: `s${i}`, status: "waiting", needs: i === 0 ? [] : [`s${Math.floor((i - 1) / 3)}`] }));
    const started = performance.now();
    const laid = layoutDag(dagInput(stages));
    expect(laid.nodes).toHaveLength(200);
    expect(laid.edges).toHaveLength(199);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("writes SVG path data through the points", () => {
    expect(edgePath([{ x: 1, y: 2 }, { x: 3.25, y: 4 }])).toBe("M1.0,2.0 L3.3,4.0");
  });
});
