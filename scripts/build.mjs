#!/usr/bin/env node
// `npm run build` (also run by `prepare` and `prepack`): compiles constructs/, runtime/, policies/ and cli/
// into dist/ as JavaScript with .d.ts types (tsconfig.build.json), bundles the dashboard (ui/) into dist/ui,
// and copies the files those modules load at run time that are not TypeScript (the worker threads' .cjs
// programs), keeping their relative paths.
// The stamp dist/.build-stamp carries the time the build started: bin/gpufabric.mjs runs the sources
// instead of a build older than any of them.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync, utimesSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const dist = join(root, "dist");
const SOURCE_DIRS = ["constructs", "runtime", "policies", "cli"];
const started = new Date();

rmSync(dist, { recursive: true, force: true });
// typescript's exports hide bin/tsc: find it from the package's manifest.
const tsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { cwd: root, stdio: "inherit" });
if (result.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${result.status ?? result.signal}); dist/ is incomplete\n`);
  process.exit(1);
}

// The dashboard (ui/): Vite bundles it into dist/ui, which the agent serves at /ui/ (vite is a build-time
// dependency only; the package ships the bundle).
const vite = join(dirname(createRequire(import.meta.url).resolve("vite/package.json")), "bin", "vite.js");
const ui = spawnSync(process.execPath, [vite, "build", "--config", join(root, "ui", "vite.config.ts"), "--logLevel", "warn"], { cwd: root, stdio: "inherit" });
if (ui.status !== 0) {
  process.stderr.write(`build: the dashboard's vite build failed (exit ${ui.status ?? ui.signal}); dist/ui is incomplete\n`);
  process.exit(1);
}

let copied = 0;
for (const dir of SOURCE_DIRS) {
  for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith(".ts") || entry.name.endsWith(".md")) continue;
    const from = join(entry.parentPath ?? entry.path, entry.name);
    const to = join(dist, relative(root, from));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
    copied++;
  }
}
// The verbs' summaries, so that `gpufabric --help` lists them without importing them (cli/commands/index.ts).
const verbs = await import(pathToFileURL(join(dist, "cli", "commands", "index.js")).href);
const summaries = await verbs.verbSummaries();
writeFileSync(fileURLToPath(verbs.SUMMARIES_FILE), `${JSON.stringify(summaries, null, 2)}\n`);

const stamp = join(dist, ".build-stamp");
writeFileSync(stamp, `${started.toISOString()}\n`);
utimesSync(stamp, started, started);
process.stdout.write(`build: dist/ written (${copied} run-time file(s) copied beside the compiled modules, ${summaries.length} verbs summarized)\n`);
// Importing every verb may leave handles open (loggers, timers): the build is done.
process.exit(0);
