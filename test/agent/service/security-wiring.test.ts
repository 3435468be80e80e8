/**
 * Encryption and audit as the real agent process enforces them: every request and decision in a log
 * that verifies, artifacts and sensitive fields sealed (no plaintext anywhere in the data directory),
 * refusal to start without a keyring or an audit sink, and 503 for changes once the audit sink fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditPaths, loadPublicKey, verifyAuditLog } from "../../../runtime/security/audit/index.ts";
import { fileKeyVersion } from "../../../runtime/security/crypto/index.ts";
import { REPO_ROOT, client, createPlatform, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess, type TestPlatform, inMemoryScratchOf, removePlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const DEVICES = [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }];

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  const visit = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.isFile() && readFileSync(path).includes(needle)) found.push(path);
    }
  };
  visit(dir);
  return found;
}

function auditEntries(dataDir: string): Array<Record<string, any>> {
  return readFileSync(join(auditPaths(dataDir).logDir, "log.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

describe("agent with encryption at rest and the audit log", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  // Unique per test run, and never written literally into the workflow: the stage builds it at run time.
  const outputMarker = `out-marker-${Date.now().toString(36)}-${process.pid}`;
  const inputMarker = `in-marker-${Date.now().toString(36)}-${process.pid}`;
  const reversed = [...outputMarker].reverse().join("");
  // Written literally into a stage's command (as a prompt would be): the store keeps commands only in the sealed document.
  const commandMarker = `cmd-marker-${Date.now().toString(36)}-${process.pid}`;

  beforeAll(async () => {
    platform = createPlatform({ devices: DEVICES });
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    "seals artifacts and the submission's document and inputs: after a run no plaintext payload is anywhere in the data directory, yet downloads decrypt",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const workflow = sleepyWorkflow("sealed", [
        {
          id: "make",
          script: `const m = [..."${reversed}"].reverse().join(""); require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/secret.txt", m); console.log(m)`,
        },
        {
          id: "copy",
          needs: ["make"],
          script: `const prompt = "${commandMarker}"; const fs = require("fs"); fs.writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/copy.txt", fs.readFileSync(process.env.GPUFABRIC_INPUT_DIR + "/make/secret.txt"))`,
        },
      ]);
      const submitted = await studio.post("/v1/runs", { workflow, inputs: { prompt: inputMarker } });
      expect(submitted.status).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run.stages)).toBe("succeeded");
      // Downloads decrypt on the fly; the second stage read the first one's (decrypted) output.
      const secret = await studio.raw(`/v1/runs/${run.id}/artifacts/secret.txt`);
      expect(secret.status).toBe(200);
      expect(await secret.text()).toBe(outputMarker);
      const copy = await studio.raw(`/v1/runs/${run.id}/artifacts/copy.txt`);
      expect(await copy.text()).toBe(outputMarker);
      // The stage printed it too: its sealed log decrypts for the API.
      await waitFor("the sealed log", async () => {
        const logs = await studio.get(`/v1/runs/${run.id}/stages/make/logs`);
        return logs.status === 200 && logs.body.stdout.includes(outputMarker) && !existsSync(join(inMemoryScratchOf(platform.dataDir), "logs", run.id, "make", "1.stdout.log"));
      });

      // Once nothing of the run runs, nothing of it is left in the stage scratch area (a tmpfs here, or DATA_DIR/scratch).
      const inMemory = inMemoryScratchOf(platform.dataDir);
      const scratch = existsSync(inMemory) ? inMemory : join(platform.dataDir, "scratch");
      await waitFor("the run's scratch folders to go", async () =>
        ["workspaces", "logs", "artifacts", "staging"].every((area) => !existsSync(join(scratch, area, run.id))),
      );

      await agent.stop(); // the store's WAL and the audit log are flushed and closed
      expect(filesContaining(platform.dataDir, outputMarker)).toEqual([]);
      expect(filesContaining(platform.dataDir, inputMarker)).toEqual([]);
      expect(filesContaining(platform.dataDir, commandMarker)).toEqual([]);
      // The agent's own in-memory folder goes when it stops.
      expect(existsSync(inMemory)).toBe(false);
      // What a killed agent left in the scratch area is plaintext nobody needs: the next start empties it.
      const stale = join(scratch, "workspaces", "stale-run", "make", "1");
      mkdirSync(stale, { recursive: true });
      writeFileSync(join(stale, "left.txt"), outputMarker);
      agent = await startAgentProcess(platform);
      expect(existsSync(join(scratch, "workspaces", "stale-run"))).toBe(false);
      // After a restart the sealed document still opens (the run's graph) and artifacts still decrypt.
      const again = await client(agent.url, platform.tokens.studio!).raw(`/v1/runs/${run.id}/artifacts/secret.txt`);
      expect(await again.text()).toBe(outputMarker);
    },
    TIMEOUT
  );

  it(
    "records requests, authentication failures, artifact reads, scheduling decisions and the config load in a log that verifies against its exported checkpoints",
    async () => {
      const studio = client(agent.url, platform.tokens.studio!);
      const nobody = client(agent.url, "gf_not-a-real-token");
      expect((await nobody.get("/v1/runs")).status).toBe(401);
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("audited", [{ id: "only", ms: 10 }]) });
      const run = await studio.waitForRun(submitted.body.id);
      expect((await studio.raw(`/v1/runs/${run.id}/artifacts/only.txt`)).status).toBe(200);
      await agent.stop();

      const entries = auditEntries(platform.dataDir);
      const actions = entries.map((e) => e.action);
      expect(actions).toContain("config.load");
      expect(entries.some((e) => e.action === "auth.failure" && e.outcome === "denied" && e.source === "127.0.0.1")).toBe(true);
      const submit = entries.filter((e) => e.action === "runs:submit" && e.object === `run/${run.id}`);
      expect(submit).toHaveLength(1);
      expect(submit[0]).toMatchObject({ actor: "tester", tenant: "studio", outcome: "success", source: "127.0.0.1", data: { status: 202 } });
      expect(entries.some((e) => e.action === "schedule.place" && e.object === `run/${run.id}/stage/only` && e.tenant === "studio")).toBe(true);
      const reads = entries.filter((e) => e.action === "artifacts:read" && e.object === `run/${run.id}/artifact/only.txt`);
      expect(reads.map((e) => e.data.phase).sort()).toEqual(["answered", "authorized"]);

      const report = await verifyAuditLog(auditPaths(platform.dataDir).logDir, { publicKey: loadPublicKey(platform.publicKeyPath), checkpointsDir: platform.sinkDir });
      expect(report.ok, JSON.stringify(report)).toBe(true);
      expect(report.exportedCheckpointsMatched).toBeGreaterThan(0);
      agent = await startAgentProcess(platform);
    },
    TIMEOUT
  );
});

describe("agent follows key rotation", () => {
  it(
    "rewraps artifacts and sealed fields to the new version in the background after 'keys rotate', so 'keys retire v1' succeeds and everything still reads",
    async () => {
      const platform = createPlatform({ devices: DEVICES });
      let agent = await startAgentProcess(platform, ["--key-check-interval", "0.2"]);
      const cli = (...args: string[]) =>
        spawnSync(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "keys", ...args, "--keyring", platform.keyringDir, "--data-dir", platform.dataDir], {
          cwd: REPO_ROOT,
          encoding: "utf8",
          timeout: 60_000,
        });
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("rotated", [{ id: "only", ms: 10 }]), inputs: { seed: 7 } });
        const run = await studio.waitForRun(submitted.body.id);
        expect(run.status).toBe("succeeded");
        const artifact = readdirSync(join(platform.dataDir, "artifacts", run.id, "only", "1")).map((n) => join(platform.dataDir, "artifacts", run.id, "only", "1", n))[0]!;
        expect(await fileKeyVersion(artifact)).toBe(1);
        // While v1 is in use, retiring it is refused.
        expect(cli("retire", "v1").status).not.toBe(0);

        expect(cli("rotate").status).toBe(0);
        const rewrap = await waitFor("the rewrap to v2", () => auditEntries(platform.dataDir).find((e) => e.action === "keys.rewrap" && e.outcome === "success"));
        // The artifact and the stage's two logs, and the run's sealed document and inputs.
        expect(rewrap.data).toMatchObject({ toVersion: 2, artifacts: 3, fields: 2 });
        const seen = auditEntries(platform.dataDir).find((e) => e.action === "keys.rotation-seen");
        expect(seen?.data).toEqual({ from: 1, to: 2 });
        expect(await fileKeyVersion(artifact)).toBe(2);
        const retired = cli("retire", "v1");
        expect(retired.status, retired.stderr).toBe(0);

        // Still readable without v1: the artifact over HTTP, and the sealed document after a restart.
        expect(await (await studio.raw(`/v1/runs/${run.id}/artifacts/only.txt`)).text()).toContain("only on");
        await agent.stop();
        agent = await startAgentProcess(platform);
        const after = await client(agent.url, platform.tokens.studio!).get(`/v1/runs/${run.id}`);
        expect(after.body.status).toBe("succeeded");
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});

describe("agent audit fails closed", () => {
  it(
    "answers 503 audit-unavailable to changes once the checkpoint sink fails (its directory replaced by a file), and creates nothing",
    async () => {
      const platform = createPlatform({ devices: DEVICES, checkpointEvery: 2 });
      const agent = await startAgentProcess(platform);
      try {
        const studio = client(agent.url, platform.tokens.studio!);
        // The sink becomes unwritable in a way root cannot bypass: a file where the directory was.
        rmSync(platform.sinkDir, { recursive: true, force: true });
        writeFileSync(platform.sinkDir, "not a directory\n");
        const refused = await waitFor("a 503 for a submission", async () => {
          const response = await studio.post("/v1/runs", { workflowRef: "contact-sheet" });
          return response.status === 503 ? response : undefined;
        });
        expect(refused.body.error.code).toBe("audit-unavailable");
        const runsBefore = (await studio.get("/v1/runs")).body.runs.length;
        const again = await studio.post("/v1/runs", { workflowRef: "contact-sheet" });
        expect(again.status).toBe(503);
        expect((await studio.get("/v1/runs")).body.runs.length).toBe(runsBefore);
        expect(agent.output()).toContain("AUDIT LOG UNAVAILABLE");
      } finally {
        await agent.stop();
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});

describe("gpufabric agent refuses to start without encryption or audit", () => {
  const agentRun = (platform: TestPlatform) =>
    spawnSync(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "agent", "--config", platform.configFile, "--data-dir", platform.dataDir, "--port", "0", "--inventory", "simulated"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });

  it.each([
    ["keyring", "security.encryption.keyring.mountPath", (p: TestPlatform) => rmSync(p.keyringDir, { recursive: true })],
    ["audit sink", "security.audit.sink.mountPath", (p: TestPlatform) => rmSync(p.sinkDir, { recursive: true })],
    ["audit signing key", "security.audit.signingKey.mountPath", (p: TestPlatform) => rmSync(join(p.dir, "audit-key"), { recursive: true })],
  ])(
    "without the %s, naming %s",
    (_what, field, remove) => {
      const platform = createPlatform({ devices: DEVICES });
      try {
        remove(platform);
        const result = agentRun(platform);
        expect(result.status).not.toBe(0);
        expect(result.stderr + result.stdout).toContain(field);
        expect(() => statSync(join(platform.dataDir, "agent.db"))).toThrow();
      } finally {
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});
