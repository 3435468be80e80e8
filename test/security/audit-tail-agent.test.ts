/**
 * The audit log's tail across agent restarts, with the real agent process: a log cut after a clean stop is
 * refused at start (the sink's exported checkpoints prove the cut), a tail left unsealed by a crash is
 * verified, then sealed and recorded, and a crashed tail that was altered is refused.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { auditPaths } from "../../runtime/security/audit/index.ts";
import { client, createPlatform, REPO_ROOT, removePlatform, startAgentProcess, type TestPlatform } from "../agent/service/harness.ts";
import { runCli } from "../support/cli.ts";

const TIMEOUT = 180_000;
const DEVICES = [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }];

const logFile = (p: TestPlatform) => join(auditPaths(p.dataDir).logDir, "log.jsonl");
const logLines = (p: TestPlatform) => readFileSync(logFile(p), "utf8").trimEnd().split("\n");
const entries = (p: TestPlatform) => logLines(p).map((l) => JSON.parse(l) as { seq: number; action: string; data: Record<string, unknown> });

/** `gpufabric agent` run to completion: it must exit before listening when it refuses the log. */
const agentRun = (p: TestPlatform) =>
  spawnSync(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "agent", "--config", p.configFile, "--data-dir", p.dataDir, "--host", "127.0.0.1", "--port", "0", "--inventory", "simulated"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });

/** `gpufabric audit verify` against the sink the agent exported to (outside the data directory, as in a cluster). */
const verify = (p: TestPlatform, ...extra: string[]) => runCli("audit", "verify", "--data-dir", p.dataDir, "--public-key", p.publicKeyPath, "--checkpoints", p.sinkDir, ...extra);

/** Starts the agent, makes a few audited requests, and stops it with SIGTERM or SIGKILL. */
async function session(p: TestPlatform, end: "stop" | "crash", requests = 12): Promise<void> {
  const agent = await startAgentProcess(p);
  try {
    const studio = client(agent.url, p.tokens.studio!);
    for (let i = 0; i < requests; i++) expect((await studio.get("/v1/runs")).status).toBe(200);
    // Responses are noted without blocking the reply: give the last notes time to reach the disk before the end.
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    if (end === "stop") await agent.stop();
    else await agent.crash();
  }
}

describe("agent start with the audit log's tail", () => {
  it(
    "refuses to start on a log cut by 10 lines after a clean stop; verify with the sink's checkpoints names the cut",
    async () => {
      const platform = createPlatform({ devices: DEVICES });
      try {
        await session(platform, "stop");
        const before = entries(platform);
        expect(before.at(-1)!.action).toBe("audit.checkpoint"); // sealed at shutdown
        expect(verify(platform, "--require-sealed").code).toBe(0);
        writeFileSync(logFile(platform), `${logLines(platform).slice(0, -10).join("\n")}\n`);

        const refused = agentRun(platform);
        expect(refused.status).not.toBe(0);
        expect(refused.stdout + refused.stderr).toMatch(/audit log .*refus|refus.*audit log/i);
        expect(refused.stdout + refused.stderr).toMatch(new RegExp(`ends at entry ${before.length - 10} but .*exported at entry ${before.length}`));
        // Nothing was signed over the cut log: its last line is still the entry before the cut.
        expect(entries(platform).at(-1)!.seq).toBe(before.length - 10);
        const verified = verify(platform);
        expect(verified.code).toBe(1);
        expect(verified.stdout).toMatch(new RegExp(`entries ${before.length - 9}\\.\\.${before.length} were removed \\(truncated\\)`));
      } finally {
        removePlatform(platform);
      }
    },
    TIMEOUT
  );

  it(
    "after a crash, verifies the unsealed tail, seals it and records how many entries it held",
    async () => {
      const platform = createPlatform({ devices: DEVICES });
      try {
        await session(platform, "crash");
        const crashed = entries(platform);
        const lastCheckpoint = crashed.map((e) => e.action).lastIndexOf("audit.checkpoint") + 1;
        const unsealed = crashed.length - lastCheckpoint;
        expect(unsealed).toBeGreaterThan(0);
        const before = verify(platform, "--require-sealed");
        expect(before.code).toBe(1);
        expect(before.stdout).toContain(`${unsealed} entries after the last checkpoint`);

        const agent = await startAgentProcess(platform);
        await agent.stop();
        const after = entries(platform);
        const note = after.find((e) => e.action === "audit.unsealed-tail");
        expect(note).toMatchObject({ seq: crashed.length + 2, data: { entries: unsealed, firstSeq: lastCheckpoint + 1, lastSeq: crashed.length } });
        expect(after[crashed.length]!.action).toBe("audit.checkpoint"); // the tail is signed before anything else is written
        expect(after[crashed.length + 2]!.action).toBe("audit.checkpoint"); // and the note is sealed at once
        const sealed = verify(platform, "--require-sealed", "--json");
        expect(sealed.code).toBe(0);
        expect(JSON.parse(sealed.stdout)).toMatchObject({ ok: true, sealed: true, unsealedEntries: 0 });
      } finally {
        removePlatform(platform);
      }
    },
    TIMEOUT
  );

  it(
    "refuses to start when an entry of a crashed, unsealed tail was altered",
    async () => {
      const platform = createPlatform({ devices: DEVICES });
      try {
        await session(platform, "crash");
        const lines = logLines(platform);
        const lastCheckpoint = lines.findLastIndex((l) => l.includes('"action":"audit.checkpoint"'));
        expect(lines.length - lastCheckpoint).toBeGreaterThan(2);
        lines[lastCheckpoint + 1] = lines[lastCheckpoint + 1]!.replace('"outcome":"success"', '"outcome":"denied"');
        writeFileSync(logFile(platform), `${lines.join("\n")}\n`);
        const refused = agentRun(platform);
        expect(refused.status).not.toBe(0);
        expect(refused.stdout + refused.stderr).toMatch(new RegExp(`entry ${lastCheckpoint + 2} was altered`));
        expect(logLines(platform)).toEqual(lines); // nothing was signed over it
      } finally {
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});
