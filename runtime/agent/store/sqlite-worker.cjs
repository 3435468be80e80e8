// Entry of the store's thread. In the build (dist/) the compiled module sits beside this file and is
// imported as it is. From the sources, TypeScript is loaded through tsx's require hook, which works inside
// this thread; its ESM loader would start one more loader thread (another V8 heap) just for this one.
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");

const compiled = join(__dirname, "sqlite-worker.js");
if (existsSync(compiled)) {
  import(pathToFileURL(compiled).href);
} else {
  require("tsx/cjs/api").register();
  require("./sqlite-worker.ts");
}
