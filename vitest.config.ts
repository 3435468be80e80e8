import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Synthesizing cdktf stacks takes a few seconds on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every gpufabric process a test spawns (bin/gpufabric.mjs) runs the sources under test, never a build
    // in dist/ (children inherit it through process.env).
    env: { GPUFABRIC_FROM_SOURCE: "1" },
  },
});
