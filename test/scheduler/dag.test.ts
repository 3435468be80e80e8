import { describe, expect, it } from "vitest";
import { buildDag, type Dag } from "../../runtime/scheduler/dag.ts";
import { stage } from "./helpers.ts";

// Runs of up to 16 stages resolve ids by scanning, larger ones through a map: both must agree.
describe.each([4, 40])("buildDag on a run of %i stages", (n) => {
  const chain = () => Array.from({ length: n }, (_, i) => stage(`s${i}`, 1, { needs: i === 0 ? [] : [`s${i - 1}`, `s${Math.floor(i / 2)}`] }));

  it("links parents and children and orders parents first", () => {
    const dag = buildDag(chain()) as Dag;
    expect(dag.parents[n - 1]).toEqual([...new Set([n - 2, Math.floor((n - 1) / 2)])]);
    expect(dag.children[0]).toContain(1);
    const at = new Map(dag.order.map((s, k) => [s, k]));
    dag.parents.forEach((ps, i) => ps.forEach((p) => expect(at.get(p)!).toBeLessThan(at.get(i)!)));
  });

  it("names a duplicate id and an unknown need", () => {
    const stages = chain();
    stages[n - 1] = { ...stages[n - 1]!, id: "s0", needs: ["nope"] };
    expect(buildDag(stages)).toEqual([
      { field: `stages[${n - 1}].id`, message: "duplicate stage id 's0': ids must be unique within a run" },
      { field: `stages[${n - 1}].needs[0]`, message: "unknown stage 'nope': name a stage of the same run" },
    ]);
  });
});
