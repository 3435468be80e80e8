/**
 * What `gpufabric --help` and `gpufabric check --help` import before they print: the static import graph
 * of the CLI's entry and of the check verb's module must stay clear of the heavy packages (zod, fastify,
 * cdktf, the rules), which the verbs import only when they run (bench/cli-start.ts measures the start).
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../agent/service/harness.ts";

/** Every module and package reached from `entry` through static, non-type imports and re-exports. */
function staticGraph(entry: string): { modules: Set<string>; packages: Set<string> } {
  const modules = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (modules.has(file)) return;
    modules.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gm)) {
      const spec = m[1]!;
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else if (!spec.startsWith("node:")) packages.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
    }
  };
  visit(entry);
  return { modules, packages };
}

const HEAVY = ["zod", "fastify", "cdktf", "@cdktf/provider-kubernetes", "pino", "yaml"];

describe("the CLI's start", () => {
  it("imports no heavy package before a verb runs (gpufabric --help)", () => {
    expect([...staticGraph(join(REPO_ROOT, "cli/index.ts")).packages].filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it("imports neither the rules nor the config schemas for gpufabric check --help", () => {
    const { modules, packages } = staticGraph(join(REPO_ROOT, "cli/commands/check.ts"));
    expect([...packages].filter((p) => HEAVY.includes(p))).toEqual([]);
    expect([...modules].map((m) => m.slice(REPO_ROOT.length))).not.toContain("policies/index.ts");
  });
});
