/**
 * The agent with `--database postgres://…`: the real agent process keeps its state in a real
 * PostgreSQL server the test starts, runs a workflow there, and finds everything again after a kill -9.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropSchema, startTestPostgres, uniqueSchema, type TestPostgres } from "../../support/postgres.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const started = await startTestPostgres();
const server = "skip" in started ? undefined : (started as TestPostgres);
if (!server) console.warn(`note: agent-on-PostgreSQL tests skipped: ${(started as { skip: string }).skip}`);

describe.runIf(server !== undefined)("an agent whose store is PostgreSQL", () => {
  let platform: TestPlatform;
  const schema = uniqueSchema("agent");
  let database: string;

  beforeAll(() => {
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
    database = `${server!.url}${server!.url.includes("?") ? "&" : "?"}schema=${schema}`;
  });
  afterAll(async () => {
    if (platform) removePlatform(platform);
    await dropSchema(server!.url, schema).catch(() => undefined);
    await server?.stop();
  });

  it(
    "runs a workflow with its state in the database, and keeps every run across a kill -9",
    async () => {
      let agent = await startAgentProcess(platform, ["--database", database]);
      try {
        expect(agent.output()).toMatch(/"store":"postgres"/);
        const studio = client(agent.url, platform.tokens.studio!);
        const done = await studio.post("/v1/runs", { workflow: sleepyWorkflow("pg-done", [{ id: "a", ms: 10 }, { id: "b", needs: ["a"], ms: 10 }]) });
        expect(done.status).toBe(202);
        expect((await studio.waitForRun(done.body.id)).status).toBe("succeeded");
        const held = await studio.post("/v1/runs", { workflow: sleepyWorkflow("pg-held", [{ id: "long", ms: 3_000 }, { id: "after", needs: ["long"], ms: 10 }]) });
        await studio.waitForRun(held.body.id, ["running"]);
        await agent.crash();
        agent = await startAgentProcess(platform, ["--database", database]);
        const again = client(agent.url, platform.tokens.studio!);
        expect((await again.get(`/v1/runs/${done.body.id}`)).body.status).toBe("succeeded");
        const recovered = await again.waitForRun(held.body.id);
        expect(recovered.status).toBe("succeeded");
        expect(recovered.stages.find((s: { id: string }) => s.id === "long").attempts).toBe(2);
        expect((await again.get(`/v1/runs/${done.body.id}/artifacts/b.txt`)).status).toBe(200);
      } finally {
        await agent.stop();
      }
    },
    TIMEOUT
  );

  it("refuses a database option that is no PostgreSQL URL, naming the field and not echoing it", async () => {
    const secret = "s3cret-password";
    await expect(startAgentProcess(platform, ["--database", `mysql://root:${secret}@db/x`])).rejects.toThrow(/database[\s\S]*postgres:\/\//);
    await startAgentProcess(platform, ["--database", `mysql://root:${secret}@db/x`]).catch((err: Error) => expect(err.message).not.toContain(secret));
  });
});
