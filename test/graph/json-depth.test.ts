/** The iterative depth checks that run before any recursive walk over client JSON. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { findTooDeep, formatJsonPath, parseWorkflow, scanJsonTextDepth } from "../../runtime/graph/index.ts";
import { ValidationError } from "../../runtime/config/errors.ts";

/** Depth of a parsed value, recursively: the oracle for small values. */
function depthOf(value: unknown): number {
  if (typeof value !== "object" || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe("JSON depth limits", () => {
  it("scans 200,000 levels without recursion and names the path to the first container past the limit", () => {
    const text = '{"inputs":' + '{"a":'.repeat(200_000) + "1" + "}".repeat(200_001);
    const tooDeep = scanJsonTextDepth(text, 64)!;
    expect(tooDeep.path.length).toBe(64);
    expect(formatJsonPath(tooDeep.path)).toBe("inputs.a.a.a.a.a.a.a…");
    expect(scanJsonTextDepth("[".repeat(100) + "]".repeat(100), 64)!.path.slice(0, 2)).toEqual([0, 0]);
  });

  it("ignores brackets inside strings, escaped quotes included, and tracks array indexes and escaped keys", () => {
    expect(scanJsonTextDepth(`{"s":"${"[{".repeat(1000)}\\"[[[","t":[]}`, 3)).toBeUndefined();
    const tooDeep = scanJsonTextDepth('{"x":[1,2,{"k\\u0041y":[[]]}]}', 4)!;
    expect(tooDeep.path).toEqual(["x", 2, "kAy", 0]);
    expect(formatJsonPath(tooDeep.path, "")).toBe("x[2].kAy[0]");
    expect(formatJsonPath(["a b", "c"])).toBe('"a b".c');
  });

  it("agrees with a recursive depth count on arbitrary JSON, text and parsed value alike", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 1, max: 8 }), (value, limit) => {
        const deeper = depthOf(value) > limit;
        expect(scanJsonTextDepth(JSON.stringify(value), limit) !== undefined).toBe(deeper);
        expect(findTooDeep(value, limit) !== undefined).toBe(deeper);
      }),
      { numRuns: 300 }
    );
  });

  it("finds the same path on a parsed value", () => {
    let deep: Record<string, unknown> = {};
    const root = { "1": { class_type: "X", _meta: deep } };
    for (let i = 0; i < 50_000; i++) {
      const next = {};
      deep.a = next;
      deep = next;
    }
    const tooDeep = findTooDeep(root, 64)!;
    expect(formatJsonPath(tooDeep.path)).toBe("1._meta.a.a.a.a.a.a…");
    expect(() => parseWorkflow(root)).toThrow(ValidationError);
    try {
      parseWorkflow(root, { source: "prompt.json" });
    } catch (err) {
      expect((err as ValidationError).issues[0]!.field).toBe("1._meta.a.a.a.a.a.a…");
      expect((err as ValidationError).issues[0]!.message).toContain("more than 64 levels");
    }
  });
});
