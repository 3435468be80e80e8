#!/usr/bin/env node
// Entry point of the `gpufabric` CLI. It runs the compiled CLI (dist/, written by `npm run build`), which
// starts fast. It runs the TypeScript sources through tsx instead when
//  - GPUFABRIC_FROM_SOURCE=1 (the test suite sets it, so every gpufabric it spawns runs the code under test);
//  - there is no build (a checkout before `npm run build`);
//  - a source file is newer than the build (a checkout edited since its last build): a stale build must
//    never run in place of the sources beside it. An installed package ships no sources, only dist/.
// GPUFABRIC_FROM_SOURCE=0 runs the build whatever the sources' times (the start-time bench measures it).
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const SOURCE_DIRS = ["constructs", "runtime", "policies", "cli"];

function buildIsCurrent() {
  if (process.env.GPUFABRIC_FROM_SOURCE === "1") return false;
  const stamp = join(root, "dist", ".build-stamp");
  if (!existsSync(stamp)) return false;
  if (process.env.GPUFABRIC_FROM_SOURCE === "0") return true;
  if (!existsSync(join(root, "cli", "index.ts"))) return true;
  const built = statSync(stamp).mtimeMs;
  for (const dir of SOURCE_DIRS) {
    for (const name of readdirSync(join(root, dir), { recursive: true })) {
      // A file removed since the listing is no reason to fail: its folder's time tells of the change.
      if ((statSync(join(root, dir, name), { throwIfNoEntry: false })?.mtimeMs ?? 0) > built) return false;
    }
  }
  return true;
}

let entry;
if (buildIsCurrent()) {
  entry = pathToFileURL(join(root, "dist", "cli", "index.js")).href;
} else {
  const { register } = await import("tsx/esm/api");
  register();
  entry = pathToFileURL(join(root, "cli", "index.ts")).href;
}
const { main } = await import(entry);
await main(process.argv);
