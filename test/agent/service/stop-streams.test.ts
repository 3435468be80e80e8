/**
 * An agent stopping with SIGTERM ends the event streams it serves instead of waiting for their clients:
 * a browser tab left open on the dashboard (the runs list's stream never ends by itself, a run's stream
 * not before the run does) must not hold up a rolling restart.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

describe("stopping with event streams open", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    agent = await startAgentProcess(platform);
  }, 120_000);
  afterAll(async () => {
    await agent?.crash().catch(() => undefined);
    if (platform) removePlatform(platform);
  });

  it("ends the runs list's stream and a running run's stream, and exits at once", async () => {
    const token = Object.values(platform.tokens)[0]!;
    const api = client(agent.url, token);
    const submitted = await api.post("/v1/runs", { workflow: sleepyWorkflow("long", [{ id: "only", ms: 60_000 }]) });
    expect(submitted.status).toBe(202);
    const headers = { authorization: `Bearer ${token}` };
    const list = await fetch(`${agent.url}/v1/runs/stream`, { headers });
    const run = await fetch(`${agent.url}/v1/runs/${submitted.body.id}/events`, { headers });
    expect([list.status, run.status]).toEqual([200, 200]);
    // Both streams are read to their end while the agent stops.
    const drained = Promise.all([list.text(), run.text()]);
    const t0 = Date.now();
    const stopped = agent.stop().then(() => Date.now() - t0);
    const tookMs = await Promise.race([stopped, new Promise<string>((r) => setTimeout(() => r("still running after 15 s"), 15_000))]);
    expect(tookMs, "the agent waited for its stream clients").not.toBe("still running after 15 s");
    await drained;
  }, 60_000);
});
