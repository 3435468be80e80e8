/**
 * A restarted agent reruns an interrupted stage with every upstream output in place: the outputs of
 * stages that succeeded before the restart are opened from their sealed artifacts, not left out.
 */
import { describe, expect, it } from "vitest";
import { chainedWorkflow } from "./chained.ts";
import { client, createPlatform, removePlatform, startAgentProcess, waitFor, type AgentProcess } from "./harness.ts";

const TIMEOUT = 90_000;

describe.each([
  ["SIGTERM", (agent: AgentProcess) => agent.stop()],
  ["SIGKILL", (agent: AgentProcess) => agent.crash()],
] as const)("an agent stopped with %s while a downstream stage runs", (_signal, stop) => {
  it(
    "reruns the stage after the restart with the upstream stage's output in $GPUFABRIC_INPUT_DIR/<stage>/",
    async () => {
      const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
      let agent = await startAgentProcess(platform);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const submitted = await studio.post("/v1/runs", {
          workflow: chainedWorkflow("two-stages", [
            { id: "a", ms: 50 },
            { id: "b", needs: ["a"], ms: 4000 },
          ]),
        });
        expect(submitted.status).toBe(202);
        const id = submitted.body.id as string;
        await waitFor("stage b to run", async () => (await studio.get(`/v1/runs/${id}`)).body.stages.find((s: { id: string }) => s.id === "b").status === "running");
        await stop(agent);

        agent = await startAgentProcess(platform);
        const after = client(agent.url, platform.tokens.studio!);
        const run = await after.waitForRun(id);
        const b = run.stages.find((s: { id: string }) => s.id === "b");
        expect(run.status, JSON.stringify(run.stages)).toBe("succeeded");
        // The first attempt was interrupted; the rerun found a's output (the fixture exits 3 without it).
        expect(b.attempts).toBe(2);
        const output = await (await after.raw(`/v1/runs/${id}/artifacts/b.txt`)).text();
        expect(output).toContain("b attempt=2");
        expect(output).toContain("input a: a attempt=1");
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});
