/**
 * Ownership inside a tenant, against the real agent process: a submitter cancels only the runs it
 * submitted, a tenant admin cancels any, a viewer none; the run view and the list show `submittedBy`.
 * The subjects are static tokens of one tenant, as `gpufabric tokens create studio --subject NAME` writes them.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../../runtime/security/identity/index.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, tenant, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;

describe("cancelling inside a tenant", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const studio = {
      ...tenant("studio"),
      roles: [
        { subject: "alice", role: "submitter" as const },
        { subject: "bob", role: "submitter" as const },
        { subject: "carol", role: "admin" as const },
        { subject: "dave", role: "viewer" as const },
      ],
    };
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }], tenants: [studio, tenant("rival")] });
    for (const subject of ["alice", "bob", "carol", "dave"]) {
      const generated = generateToken(subject);
      appendFileSync(join(platform.dir, "tokens", "studio"), `${generated.line}\n`);
      tokens[subject] = generated.token;
    }
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  const as = (subject: string) => client(agent.url, tokens[subject] ?? platform.tokens[subject]!);
  const submit = async (subject: string) => {
    const answer = await as(subject).post("/v1/runs", { workflow: sleepyWorkflow("long", [{ id: "wait", ms: 60_000 }]) });
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    return answer.body.id as string;
  };

  it("shows who submitted a run, in the run view and the list, to every subject of the tenant", async () => {
    const id = await submit("alice");
    const view = await as("bob").get(`/v1/runs/${id}`);
    expect(view.body.submittedBy).toBe("alice");
    const list = await as("dave").get("/v1/runs");
    expect(list.body.runs.find((r: { id: string }) => r.id === id).submittedBy).toBe("alice");
    await as("alice").post(`/v1/runs/${id}/cancel`);
  });

  it("refuses a submitter cancelling another subject's run with a 403 that says who may", async () => {
    const id = await submit("alice");
    const refused = await as("bob").post(`/v1/runs/${id}/cancel`);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toContain("submitted by 'alice'");
    expect(refused.body.error.message).toContain("admin of tenant 'studio'");
    expect(refused.body.error.field).toBe("runId");
    expect((await as("bob").get(`/v1/runs/${id}`)).body.status).not.toBe("cancelled");
    const own = await as("alice").post(`/v1/runs/${id}/cancel`);
    expect(own.status).toBe(202);
    expect((await as("alice").waitForRun(id, ["cancelled"])).submittedBy).toBe("alice");
  });

  it("lets a tenant admin cancel any run, and no viewer or other tenant cancel one", async () => {
    const id = await submit("bob");
    expect((await as("dave").post(`/v1/runs/${id}/cancel`)).status).toBe(403);
    expect((await as("rival").post(`/v1/runs/${id}/cancel`)).status).toBe(404);
    const byAdmin = await as("carol").post(`/v1/runs/${id}/cancel`);
    expect(byAdmin.status).toBe(202);
    await as("carol").waitForRun(id, ["cancelled"]);
  });
});
