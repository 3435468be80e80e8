/**
 * The run's `inputs` reach every stage as $GPUFABRIC_INPUT_DIR/run-inputs.json, opened from their
 * sealed field (the store never holds them in plaintext), and the example workflow takes its seed and
 * titles from them.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { chainedWorkflow } from "./chained.ts";
import { useAgent } from "./agent-fixture.ts";
import { client, startAgentProcess } from "./harness.ts";

const TIMEOUT = 90_000;

describe("run inputs", () => {
  const fx = useAgent({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }, { id: "g1", node: "n0", memoryMiB: 24_576 }] });

  it(
    "appear as run-inputs.json in every stage's input folder, and only sealed in the store",
    async () => {
      const studio = client(fx.agent.url, fx.platform.tokens.studio!);
      const marker = `marker-${Date.now()}-inputs`;
      const inputs = { seed: 42, note: marker, nested: { list: [1, 2, 3] } };
      const submitted = await studio.post("/v1/runs", {
        workflow: chainedWorkflow("with-inputs", [{ id: "a", ms: 10 }, { id: "b", needs: ["a"], ms: 10 }], { REQUIRE_RUN_INPUTS: "1" }),
        inputs,
      });
      expect(submitted.status).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run.stages)).toBe("succeeded");
      for (const stage of ["a", "b"]) {
        const text = await (await studio.raw(`/v1/runs/${run.id}/artifacts/${stage}.txt`)).text();
        const json = text.slice(text.indexOf("run-inputs: ") + "run-inputs: ".length);
        expect(JSON.parse(json), stage).toEqual(inputs);
      }
      await fx.agent.stop(); // the WAL is checkpointed into agent.db
      for (const file of ["agent.db", "agent.db-wal"].map((f) => join(fx.platform.dataDir, f))) {
        if (existsSync(file)) expect(readFileSync(file).includes(marker), file).toBe(false);
      }
      fx.agent = await startAgentProcess(fx.platform);
    },
    TIMEOUT
  );

  it(
    "are an empty object for a run submitted without them",
    async () => {
      const studio = client(fx.agent.url, fx.platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflow: chainedWorkflow("no-inputs", [{ id: "a", ms: 10 }], { REQUIRE_RUN_INPUTS: "1" }) });
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run.stages)).toBe("succeeded");
      const text = await (await studio.raw(`/v1/runs/${run.id}/artifacts/a.txt`)).text();
      expect(JSON.parse(text.slice(text.indexOf("run-inputs: ") + "run-inputs: ".length))).toEqual({});
    },
    TIMEOUT
  );

  it(
    "give the example workflow its seed and scene titles",
    async () => {
      const studio = client(fx.agent.url, fx.platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflowRef: "contact-sheet", inputs: { seed: 42, titles: ["harbor at dawn", "quiet reef"] } });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run.stages)).toBe("succeeded");
      const scenes = JSON.parse(await (await studio.raw(`/v1/runs/${run.id}/artifacts/scenes.json`)).text());
      expect(scenes.seed).toBe(42);
      expect(scenes.scenes.map((s: { title: string }) => s.title).slice(0, 2)).toEqual(["harbor at dawn", "quiet reef"]);
      expect(scenes.scenes).toHaveLength(4);
    },
    TIMEOUT
  );
});
