/**
 * A test platform and its agent process, made before a suite's tests and removed after them (kept out of
 * harness.ts, which the benches import outside the test runner).
 */
import { afterAll, beforeAll } from "vitest";
import { createPlatform, removePlatform, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

export interface AgentFixture {
  platform: TestPlatform;
  /** The running agent; a test that restarts it assigns the new one here, and that one is stopped after the suite. */
  agent: AgentProcess;
}

/**
 * Registers the suite's beforeAll (write the platform, start the agent with `args`) and afterAll (stop
 * whichever agent runs then, remove the platform); the returned object is filled in before the first test.
 */
export function useAgent(options: Parameters<typeof createPlatform>[0], args: string[] = [], timeoutMs = 180_000): AgentFixture {
  const fixture = {} as AgentFixture;
  beforeAll(async () => {
    fixture.platform = createPlatform(options);
    fixture.agent = await startAgentProcess(fixture.platform, args);
  }, timeoutMs);
  afterAll(async () => {
    await fixture.agent?.stop();
    if (fixture.platform) removePlatform(fixture.platform);
  });
  return fixture;
}
