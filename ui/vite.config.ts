// The dashboard's build: `npm run build:ui` writes dist/ui, which the agent serves at /ui/.
// The agent's Content-Security-Policy allows only same-origin scripts and styles, so nothing may be inlined:
// no asset becomes a data: URL and the entry stays an external module.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root: here,
  base: "/ui/",
  // JSX through Vite's own transform, compiled for Preact's runtime (no React, no plugin).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/ui", import.meta.url)),
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // The preload polyfill is the one script Vite might otherwise add; every browser we target has modulepreload.
    modulePreload: { polyfill: false },
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    // `vite --config ui/vite.config.ts` for work on the pages: the API comes from a running agent.
    proxy: Object.fromEntries(
      ["/v1", "/ui/session"].map((p) => [p, { target: process.env.GPUFABRIC_AGENT_URL ?? "http://127.0.0.1:8080", changeOrigin: true }])
    ),
  },
});
