/**
 * `gpufabric dev --workers 3 --control-planes 2 --once --json`: the examples on a local cluster of real
 * processes (a PostgreSQL server of its own, two control planes, three workers), with the stages of one run
 * on more than one node, and `<data-dir>/cluster.json` naming every member.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startLocalPostgres } from "../../../runtime/agent/cluster/local-postgres.ts";
import type { ClusterFile } from "../../../runtime/agent/cluster/local-cluster.ts";
import { REPO_ROOT } from "../service/harness.ts";

const probe = await startLocalPostgres();
const unavailable = "unavailable" in probe ? probe.unavailable : undefined;
if (!("unavailable" in probe)) await probe.stop();
if (unavailable) console.warn(`note: gpufabric dev --workers skipped: ${unavailable}`);

describe.runIf(unavailable === undefined)("gpufabric dev --workers 3 --control-planes 2 --once --json", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-dev-cluster-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("runs every example on the cluster, a run's stages on several nodes, and stops every member", () => {
    const result = spawnSync(process.execPath, ["bin/gpufabric.mjs", "dev", "--workers", "3", "--control-planes", "2", "--once", "--json", "--data-dir", dataDir], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      timeout: 240_000,
    });
    const logs = () =>
      readdirSync(join(dataDir, "logs"))
        .map((f) => `${f}: ${readFileSync(join(dataDir, "logs", f), "utf8").split("\n").filter((l) => /"level":(40|50|60)/.test(l)).slice(-3).join("\n")}`)
        .join("\n");
    expect(result.status, `${result.stderr}\n${logs()}`).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      ok: boolean;
      nodes: string[];
      runs: Array<{ workflow: string; status: string; nodes?: Record<string, string> }>;
      processes: Array<{ role: string; pid: number; node?: string; url?: string }>;
    };
    expect(summary.ok).toBe(true);
    for (const run of summary.runs) expect(run.status).toBe("succeeded");
    const contact = summary.runs.find((r) => r.workflow === "contact-sheet")!;
    expect(new Set(Object.values(contact.nodes ?? {})).size).toBeGreaterThan(1);
    const file = JSON.parse(readFileSync(join(dataDir, "cluster.json"), "utf8")) as ClusterFile;
    expect(file.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(file.processes.filter((p) => p.role === "control-plane")).toHaveLength(2);
    expect(file.processes.filter((p) => p.role === "worker").map((p) => p.node)).toHaveLength(3);
    // Every member was stopped with the run: none of their pids is alive.
    for (const p of file.processes) expect(() => process.kill(p.pid, 0)).toThrow();
    // The worker tokens are stored as hashes only.
    const hashes = readFileSync(join(dataDir, "worker-tokens", "workers"), "utf8");
    const token = readFileSync(join(dataDir, "workers", "worker-0", "token"), "utf8").trim();
    expect(hashes).not.toContain(token);
  }, 300_000);
});
