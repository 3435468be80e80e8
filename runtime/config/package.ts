/**
 * Where the gpufabric package lives, from its sources (runtime/config/) or from its build
 * (dist/runtime/config/): files found relative to the package (package.json, bin/) must not assume
 * how deep the module running now sits.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | undefined;

/** The folder holding gpufabric's own package.json (a checkout's root, or node_modules/gpufabric). */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name === "gpufabric") return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`gpufabric's package.json was not found above ${fileURLToPath(import.meta.url)}: reinstall the package`);
    dir = parent;
  }
}

/** The package's version, as its package.json gives it. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}
