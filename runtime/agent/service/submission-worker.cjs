// Entry of the submission validator's thread. TypeScript is loaded through tsx's require hook, which works
// inside this thread; its ESM loader would start one more loader thread (another V8 heap) just for this one.
require("tsx/cjs/api").register();
require("./submission-worker.ts");
