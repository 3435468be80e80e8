/** The data directory and the store are private to the agent's user, whether the agent made them or found them open. */
import { chmodSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess } from "./harness.ts";

const TIMEOUT = 60_000;
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe("agent data directory and store modes", () => {
  it(
    "makes the data directory 0700 and agent.db, -wal and -shm 0600, and tightens ones it finds open",
    async () => {
      const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }] });
      const db = join(platform.dataDir, "agent.db");
      let agent = await startAgentProcess(platform);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("private", [{ id: "only", ms: 10 }]) });
        await studio.waitForRun(submitted.body.id);
        expect(modeOf(platform.dataDir)).toBe(0o700);
        for (const file of [db, `${db}-wal`, `${db}-shm`]) {
          expect(existsSync(file), file).toBe(true);
          expect(modeOf(file).toString(8), file).toBe("600");
        }
        await agent.stop();

        // Found open (an older agent, a restore from backup): tightened at start, and the log says so.
        chmodSync(platform.dataDir, 0o755);
        chmodSync(db, 0o644);
        agent = await startAgentProcess(platform);
        expect(modeOf(platform.dataDir)).toBe(0o700);
        expect(modeOf(db).toString(8)).toBe("600");
        expect(agent.output()).toContain("the data directory was open to other users (mode 0755): tightened to 0700");
        expect(agent.output()).toContain("a store file was open to other users (mode 0644): tightened to 0600");
        const again = client(agent.url, platform.tokens.studio!);
        expect((await again.get(`/v1/runs/${submitted.body.id}`)).body.status).toBe("succeeded");
        for (const file of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(file)) expect(modeOf(file).toString(8), file).toBe("600");
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});
