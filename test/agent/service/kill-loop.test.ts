/**
 * The agent killed at random points, again and again, with real processes: kill -9 in most rounds and
 * SIGTERM in some, while multi-stage runs are in flight, restarting each time. Every accepted run must
 * end (succeeded), every attempt must find its inputs (the stage program exits 3 without them), no
 * stage may have outputs from more than one attempt, and the audit log must verify after each kill.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openSqliteStore } from "../../../runtime/agent/store/index.ts";
import { auditPaths, loadPublicKey, verifyAuditLog } from "../../../runtime/security/audit/index.ts";
import { chainedWorkflow } from "./chained.ts";
import { client, createPlatform, removePlatform, sleep, startAgentProcess, type AgentProcess } from "./harness.ts";

const ROUNDS = 8;
/** Rounds that stop the agent with SIGTERM; every other round kills it with SIGKILL. */
const SIGTERM_ROUNDS = new Set([2, 5]);
const STAGE_IDS = ["a", "b", "c", "d"] as const;
/** The exit code of the chained-stage fixture when an input is missing. */
const MISSING_INPUT_EXIT = 3;

/** mulberry32: a seeded generator, so a failing sequence of kills can be replayed with KILL_LOOP_SEED. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A diamond (a → b, c → d) whose stages each check they see the outputs of every stage they need and the run's inputs. */
function diamond(name: string, next: () => number) {
  const ms = () => 150 + Math.floor(next() * 600);
  return chainedWorkflow(
    name,
    [
      { id: "a", ms: ms() },
      { id: "b", needs: ["a"], ms: ms() },
      { id: "c", needs: ["a"], ms: ms() },
      { id: "d", needs: ["b", "c"], ms: ms() },
    ],
    { REQUIRE_RUN_INPUTS: "1" }
  );
}

describe("agent killed at random points in a loop", () => {
  it("ends every accepted run once, every attempt with its inputs, with an audit log that verifies after each kill", async () => {
    const seed = Number(process.env.KILL_LOOP_SEED ?? Date.now() % 2 ** 31);
    const next = random(seed);
    const where = `seed ${seed} (rerun with KILL_LOOP_SEED=${seed})`;
    const platform = createPlatform({
      devices: [
        { id: "g0", node: "n0", memoryMiB: 24_576 },
        { id: "g1", node: "n0", memoryMiB: 24_576 },
      ],
      checkpointEvery: 50,
    });
    const publicKey = loadPublicKey(platform.publicKeyPath);
    const accepted: Array<{ id: string; round: number }> = [];
    let agent: AgentProcess | undefined;
    try {
      for (let round = 0; round < ROUNDS; round++) {
        agent = await startAgentProcess(platform);
        const studio = client(agent.url, platform.tokens.studio!);
        for (let i = 0; i < 2; i++) {
          const submitted = await studio.post("/v1/runs", { workflow: diamond(`kill-${round}-${i}`, next), inputs: { round, i } });
          expect(submitted.status, `${where}: ${JSON.stringify(submitted.body)}`).toBe(202);
          accepted.push({ id: submitted.body.id, round });
        }
        // A random point: before the first stage starts, mid-stage, while outputs are sealed, between stages.
        await sleep(Math.floor(next() * 1500));
        if (SIGTERM_ROUNDS.has(round)) await agent.stop();
        else await agent.crash();
        const report = await verifyAuditLog(auditPaths(platform.dataDir).logDir, { publicKey, checkpointsDir: platform.sinkDir });
        expect(report.ok, `${where}, after round ${round}: ${JSON.stringify(report.firstBad)}`).toBe(true);
      }

      agent = await startAgentProcess(platform);
      const studio = client(agent.url, platform.tokens.studio!);
      let interrupted = 0;
      for (const { id, round } of accepted) {
        const run = await studio.waitForRun(id, ["succeeded", "failed", "cancelled"], 60_000);
        expect(run.status, `${where}: run ${id} of round ${round}: ${JSON.stringify(run.stages)}`).toBe("succeeded");
        interrupted += String((await studio.get(`/v1/runs/${id}/events`)).body).match(/event: stage\.interrupted/g)?.length ?? 0;
        // Each output names the attempt that wrote it and the first line of each input it read.
        for (const stage of STAGE_IDS) {
          const text = await (await studio.raw(`/v1/runs/${id}/artifacts/${stage}.txt`)).text();
          expect(text, `${where}: ${id}/${stage}`).toContain(`run=${id}`);
          expect(text, `${where}: ${id}/${stage}`).toContain(`run-inputs: {`);
        }
      }
      // The loop did interrupt stages (else it proved nothing about reruns).
      expect(interrupted, where).toBeGreaterThan(0);
      await agent.stop();
      agent = undefined;

      const report = await verifyAuditLog(auditPaths(platform.dataDir).logDir, { publicKey, checkpointsDir: platform.sinkDir });
      expect(report.ok, `${where}: ${JSON.stringify(report.firstBad)}`).toBe(true);
      const store = openSqliteStore(join(platform.dataDir, "agent.db"));
      try {
        for (const { id } of accepted) {
          const detail = (await store.getRun("studio", id))!;
          for (const stage of STAGE_IDS) {
            const at = `${where}: ${id}/${stage}`;
            const attempts = detail.attempts.filter((a) => a.stageId === stage);
            // No attempt ever started without its inputs.
            expect(attempts.filter((a) => a.exitCode === MISSING_INPUT_EXIT).map((a) => a.reason), at).toEqual([]);
            const succeeded = attempts.filter((a) => a.status === "succeeded");
            expect(succeeded, at).toHaveLength(1);
            // Committed once: the stage's artifacts all come from its one succeeded attempt.
            const artifacts = detail.artifacts.filter((a) => a.stageId === stage);
            expect(artifacts.map((a) => a.name), at).toEqual([`${stage}.txt`]);
            expect(artifacts[0]!.attemptId, at).toBe(succeeded[0]!.id);
            expect(artifacts[0]!.path, at).toContain(`/${stage}/${succeeded[0]!.number}/`);
          }
        }
      } finally {
        await store.close();
      }
    } finally {
      await agent?.crash();
      removePlatform(platform);
    }
  }, 150_000);
});
