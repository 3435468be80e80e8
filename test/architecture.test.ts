/**
 * The layers of the tree and which may import which, as the README's Architecture section draws
 * them: a module importing a layer above its own fails here, naming the file and the import.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./agent/service/harness.ts";

/** Each layer and the layers it may import (itself always). */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  "runtime/config": [],
  "runtime/graph": ["runtime/config"],
  "runtime/scheduler": ["runtime/config", "runtime/graph"],
  "runtime/sim": ["runtime/config", "runtime/graph", "runtime/scheduler"],
  "runtime/security": ["runtime/config"],
  // The agent enforces the compliance packs' run-time rules at submission.
  "runtime/agent": ["runtime/config", "runtime/graph", "runtime/scheduler", "runtime/security", "policies/runtime"],
  policies: ["runtime/config", "runtime/graph"],
  constructs: ["runtime/config", "runtime/graph", "policies"],
  cli: ["runtime", "constructs", "policies"],
};

function layerOf(path: string): string | undefined {
  const rel = relative(REPO_ROOT, path).split(sep).join("/");
  return Object.keys(MAY_IMPORT)
    .filter((layer) => rel === layer || rel.startsWith(`${layer}/`))
    .sort((a, b) => b.length - a.length)[0];
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

describe("the layers of the tree", () => {
  it("import only the layers below them", () => {
    const violations: string[] = [];
    for (const layer of Object.keys(MAY_IMPORT)) {
      for (const file of sources(join(REPO_ROOT, layer))) {
        const from = layerOf(file)!;
        const text = readFileSync(file, "utf8");
        for (const match of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
          const target = resolve(file, "..", match[1]!);
          const to = layerOf(target);
          if (to === undefined || to === from || to.startsWith(`${from}/`)) continue;
          const allowed = MAY_IMPORT[from]!.some((l) => to === l || to.startsWith(`${l}/`) || relative(REPO_ROOT, target).split(sep).join("/").startsWith(`${l}/`));
          if (!allowed) violations.push(`${relative(REPO_ROOT, file)} imports ${match[1]} (${to}); ${from} may import ${MAY_IMPORT[from]!.join(", ") || "nothing else"}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
