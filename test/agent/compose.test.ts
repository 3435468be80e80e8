/**
 * The three parts the agent loop composes, composed by hand: the store hands out ready stages, the
 * executors run them on inventory devices, committed outputs flow through the store to the stages that
 * need them.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProcessExecutor, SimulatedExecutor, executorFor } from "../../runtime/agent/executors/index.ts";
import { simulatedInventory } from "../../runtime/agent/inventory/index.ts";
import { openSqliteStore, type NewStage, type SqliteStore } from "../../runtime/agent/store/index.ts";
import { PoolSchema } from "../../runtime/config/schema.ts";

let dataDir: string;
let store: SqliteStore;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "gpufabric-compose-"));
  store = openSqliteStore(join(dataDir, "agent.db"));
});
afterEach(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const pool = PoolSchema.parse({
  name: "local",
  gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 23034 },
  nodes: 1,
  gpusPerNode: 2,
  sharing: { mode: "exclusive" },
  devices: [
    { id: "local-n0-g0", node: "local-n0", index: 0, memoryMiB: 23034 },
    { id: "local-n0-g1", node: "local-n0", index: 1, memoryMiB: 23034 },
  ],
  nodeSelector: {},
  priorityClasses: { interactive: "interactive", batch: "batch" },
  tenantQuotas: {},
});

const write = (file: string, expression: string) => `require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/${file}", ${expression})`;
const read = (stage: string, file: string) => `require("fs").readFileSync(process.env.GPUFABRIC_INPUT_DIR + "/${stage}/${file}", "utf8")`;

function nodeStage(id: string, needs: string[], script: string): NewStage {
  return { id, needs, resources: { gpus: 1, vramMiB: 1024 }, run: { command: [process.execPath, "-e", script], env: {} } };
}

describe("store + inventory + executors", () => {
  it("runs a diamond whose outputs flow from stage to stage, with one simulated stage, to success", async () => {
    const devices = simulatedInventory(pool, "test").devices;
    const executors = { process: new ProcessExecutor({ dataDir }), simulated: new SimulatedExecutor({ timeScale: 0.001 }) };
    const { run } = await store.createRun({
      tenant: "studio",
      workflow: "diamond",
      format: "native",
      priority: "interactive",
      document: {},
      stages: [
        nodeStage("seed", [], write("n.txt", `"21"`)),
        nodeStage("double", ["seed"], write("n.txt", `String(2 * Number(${read("seed", "n.txt")}))`)),
        { id: "describe", needs: ["seed"], resources: { gpus: 1, vramMiB: 1024 }, estimate: { durationS: 5, modelLoadS: 1 } },
        nodeStage("report", ["double", "describe"], write("report.txt", `"answer=" + ${read("double", "n.txt")} + " on " + process.env.CUDA_VISIBLE_DEVICES`)),
      ],
    });

    let turn = 0;
    for (let ready = await store.readyStages(); ready.length > 0; ready = await store.readyStages()) {
      await Promise.all(
        ready.map(async ({ runId, stage }) => {
          const device = devices[turn++ % devices.length]!;
          const attempt = await store.markPlaced({ runId, stageId: stage.stageId, gpus: [device.id], explanation: { device: device.id } });
          const inputs = (await store.artifactsOf(runId, stage.needs)).reduce<Record<string, Array<{ name: string; path: string }>>>((acc, a) => {
            (acc[a.stageId] ??= []).push({ name: a.name, path: a.path });
            return acc;
          }, {});
          const running = await executorFor(stage.spec, executors).start({
            attemptId: attempt.id,
            runId,
            stageId: stage.stageId,
            number: attempt.number,
            stage: stage.spec,
            gpus: [{ id: device.id, uuid: device.uuid, simulated: device.simulated }],
            inputs: Object.entries(inputs).map(([stageId, artifacts]) => ({ stageId, artifacts })),
          });
          await store.markRunning(attempt.id, { pid: running.pid, workspace: running.workspace });
          const outcome = await running.done;
          expect(outcome.reason, outcome.message).toBe("completed");
          await store.markSealing(attempt.id, { exitCode: outcome.exitCode, simulated: outcome.simulated });
          await store.markSucceeded(attempt.id, { exitCode: outcome.exitCode, simulated: outcome.simulated, artifacts: await running.commitOutputs() });
        })
      );
    }

    const detail = (await store.getRun("studio", run.id))!;
    expect(detail.run.status).toBe("succeeded");
    expect(detail.attempts.map((a) => [a.stageId, a.simulated])).toEqual([
      ["describe", true],
      ["double", false],
      ["report", false],
      ["seed", false],
    ]);
    const report = detail.artifacts.find((a) => a.name === "report.txt")!;
    expect(readFileSync(report.path, "utf8")).toMatch(/^answer=42 on local-n0-g[01]$/);
    expect(detail.artifacts.map((a) => `${a.stageId}/${a.name}`)).toEqual(["double/n.txt", "report/report.txt", "seed/n.txt"]);
    const events = (await store.eventsSince("studio", run.id, 0))!.map((e) => e.type);
    expect(events.filter((t) => t === "stage.succeeded")).toHaveLength(4);
    expect(events[events.length - 1]).toBe("run.succeeded");
  });
});
