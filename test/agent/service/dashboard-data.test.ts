/**
 * The dashboard's data routes on the real agent process: the GPUs' VRAM history (fills, and stays within
 * its window), fair share (another tenant only ever as "(other tenants)"), a workflow's stage percentiles
 * with a regression flagged when a stage got slower, the admin's audit page (its tenant's entries, the
 * chain's verify status, a tampered line reported) and the keyring's versions (no key material).
 */
import { appendFileSync, closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../../runtime/security/identity/index.ts";
import { client, createPlatform, removePlatform, sleep, sleepyWorkflow, startAgentProcess, tenant, waitFor, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const DEVICES = [0, 1, 2, 3].map((i) => ({ id: `local-g${i}`, node: "n0", memoryMiB: 24_576 }));
const STEP_S = 0.1;
const WINDOW_S = 2;

/** The p-th percentile interpolated between closest ranks, written out per position (the route's contract). */
function expectedPercentile(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  const pos = (v.length - 1) * p;
  const lo = Math.floor(pos);
  return v[lo]! + (v[Math.ceil(pos)]! - v[lo]!) * (pos - lo);
}

describe("the dashboard's data routes on a real agent", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;
  let rival: ReturnType<typeof client>;
  let admin: ReturnType<typeof client>;
  let viewer: ReturnType<typeof client>;
  const rivalRuns: string[] = [];

  beforeAll(async () => {
    platform = createPlatform({
      devices: DEVICES,
      checkpointEvery: 5,
      tenants: [
        {
          ...tenant("studio"),
          weight: 3,
          gpuQuota: 3,
          roles: [
            { subject: "tester", role: "submitter" },
            { subject: "ada", role: "admin" },
            { subject: "vic", role: "viewer" },
          ],
        },
        tenant("rival"),
      ],
    });
    // An admin and a viewer of studio, beside its submitter.
    const ada = generateToken("ada");
    const vic = generateToken("vic");
    appendFileSync(join(platform.dir, "tokens", "studio"), `${ada.line}\n${vic.line}\n`);
    agent = await startAgentProcess(platform, ["--gpu-history-step", String(STEP_S), "--gpu-history-window", String(WINDOW_S)]);
    studio = client(agent.url, platform.tokens.studio!);
    rival = client(agent.url, platform.tokens.rival!);
    admin = client(agent.url, ada.token);
    viewer = client(agent.url, vic.token);
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it("samples every device's VRAM into a history that fills, shows a running stage's reservation, and keeps no more than its window", async () => {
    const first = await waitFor("samples of every device", async () => {
      const h = await studio.get("/v1/gpus/history?minutes=60");
      return h.status === 200 && h.body.devices.every((d: { samples: unknown[] }) => d.samples.length >= 3) && h.body;
    });
    expect(first.stepSeconds).toBeCloseTo(STEP_S, 5);
    expect(first.devices.map((d: { id: string }) => d.id)).toEqual(DEVICES.map((d) => d.id));
    for (const d of first.devices) expect(d).toMatchObject({ node: "n0", totalMiB: 24_576, simulated: true, measured: false });

    // A running stage of another tenant shows as its device's reserved MiB (device figures only, no tenant).
    const run = await rival.post("/v1/runs", { workflow: sleepyWorkflow("hold", [{ id: "hold", vram: "2Gi", ms: 1500 }]) });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    rivalRuns.push(run.body.id);
    const seen = await waitFor("the reservation in the history", async () => {
      const h = await studio.get("/v1/gpus/history?minutes=1");
      const hit = h.body.devices.find((d: { samples: number[][] }) => d.samples.some((s) => s[1] === 2048 && s[3] === 2048));
      return hit && h.body;
    });
    expect(JSON.stringify(seen)).not.toContain("rival");
    await rival.waitForRun(run.body.id);

    // Bounded: after more than the window, each device holds at most window / step samples.
    await sleep((WINDOW_S + 1) * 1000);
    const later = await studio.get("/v1/gpus/history?minutes=1440");
    for (const d of later.body.devices) {
      expect(d.samples.length).toBeLessThanOrEqual(WINDOW_S / STEP_S);
      expect(d.samples.length).toBeGreaterThanOrEqual(WINDOW_S / STEP_S / 2);
      const times = d.samples.map((s: number[]) => s[0]);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }

    const tooLong = await studio.get("/v1/gpus/history?minutes=5000");
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error.field).toMatch(/minutes/);
    expect(tooLong.body.error.message).toMatch(/1440/);
  }, TIMEOUT);

  it("answers fair share with the caller's tenant by name and every other tenant summed as one row", async () => {
    // rival holds every GPU; studio's two stages then wait, queued.
    const busy = await rival.post("/v1/runs", { workflow: sleepyWorkflow("busy", DEVICES.map((_, i) => ({ id: `s${i}`, ms: 4000 }))) });
    expect(busy.status, JSON.stringify(busy.body)).toBe(202);
    rivalRuns.push(busy.body.id);
    await waitFor("rival on every GPU", async () => {
      const g = await studio.get("/v1/gpus");
      return g.body.gpus.every((x: { running: unknown[] }) => x.running.length === 1);
    });
    const waiting = await studio.post("/v1/runs", { workflow: sleepyWorkflow("queued", [{ id: "a", ms: 2000 }, { id: "b", ms: 2000 }]) });
    expect(waiting.status, JSON.stringify(waiting.body)).toBe(202);

    const mine = await waitFor("studio's queued GPU-seconds", async () => {
      const f = await studio.get("/v1/fairshare");
      return f.status === 200 && f.body.tenants[0].queuedGpuSeconds.batch > 0 && f.body;
    });
    expect(mine.gpus).toBe(4);
    expect(mine.tenants.map((t: { tenant: string }) => t.tenant)).toEqual(["studio", "(other tenants)"]);
    const [own, others] = mine.tenants;
    expect(own).toMatchObject({ weight: 3, share: 0, quota: { gpus: 3, vramMiB: null, usedGpus: 0, usedVramMiB: 0 }, queuedGpuSeconds: { interactive: 0 } });
    // Two stages of one GPU, estimated at 2 s each.
    expect(own.queuedGpuSeconds.batch).toBeCloseTo(4, 0);
    expect(others).toMatchObject({ weight: 1, share: 1, quota: null, queuedGpuSeconds: { interactive: 0, batch: 0 } });
    expect(JSON.stringify(mine)).not.toContain("rival");

    const theirs = await rival.get("/v1/fairshare");
    expect(theirs.body.tenants.map((t: { tenant: string }) => t.tenant)).toEqual(["rival", "(other tenants)"]);
    expect(theirs.body.tenants[1]).toMatchObject({ weight: 3, share: 0, quota: { gpus: 3, vramMiB: null, usedGpus: 0, usedVramMiB: 0 } });
    expect(theirs.body.tenants[1].queuedGpuSeconds.batch).toBeGreaterThan(0);
    expect(JSON.stringify(theirs.body)).not.toContain("studio");

    await studio.waitForRun(waiting.body.id);
    await rival.waitForRun(busy.body.id);
  }, TIMEOUT);

  it("gives a workflow's stage percentiles over its runs and flags the stage that got slower", async () => {
    const submitAll = async (count: number, ms: number) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const r = await studio.post("/v1/runs", { workflow: sleepyWorkflow("stats-wf", [{ id: "work", ms }, { id: "steady", ms: 20 }]) });
        expect(r.status, JSON.stringify(r.body)).toBe(202);
        ids.push(r.body.id);
        // Distinct creation times: the recent runs are the last created.
        await sleep(5);
      }
      return Promise.all(ids.map((id) => studio.waitForRun(id)));
    };
    const baseline = await submitAll(5, 20);
    const recent = await submitAll(10, 900);
    for (const run of [...baseline, ...recent]) expect(run.status).toBe("succeeded");
    const seconds = (run: { stages: Array<{ id: string; startedAt: string; finishedAt: string }> }, stage: string) => {
      const s = run.stages.find((x) => x.id === stage)!;
      return (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000;
    };

    const stats = await studio.get("/v1/workflows/stats-wf/stats?runs=50");
    expect(stats.status, JSON.stringify(stats.body)).toBe(200);
    expect(stats.body).toMatchObject({ workflow: "stats-wf", runs: 15 });
    const work = stats.body.stages.find((s: { stageId: string }) => s.stageId === "work");
    const all = [...baseline, ...recent].map((r) => seconds(r, "work"));
    const sorted = [...all].sort((a, b) => a - b);
    expect(work.count).toBe(15);
    // Fifteen values: the median is the 8th; p90 lies 0.6 of the way from the 13th to the 14th.
    expect(work.p50).toBeCloseTo(sorted[7]!, 3);
    expect(work.p90).toBeCloseTo(sorted[12]! + 0.6 * (sorted[13]! - sorted[12]!), 3);
    expect(work.p99).toBeCloseTo(expectedPercentile(all, 0.99), 3);
    // Ten recent values: the median is the mean of the 5th and 6th.
    const recentSorted = recent.map((r) => seconds(r, "work")).sort((a, b) => a - b);
    expect(work.recentP50).toBeCloseTo((recentSorted[4]! + recentSorted[5]!) / 2, 3);
    expect(work.baselineP50).toBeCloseTo(baseline.map((r) => seconds(r, "work")).sort((a, b) => a - b)[2]!, 3);
    expect(work.regression).toBe(true);
    expect(work.recentP50).toBeGreaterThanOrEqual(1.25 * work.baselineP50);
    expect(stats.body.stages.find((s: { stageId: string }) => s.stageId === "steady")).toMatchObject({ count: 15 });

    // The last 5 runs only: all "recent", no baseline, nothing flagged.
    const few = await studio.get("/v1/workflows/stats-wf/stats?runs=5");
    expect(few.body.runs).toBe(5);
    expect(few.body.stages.find((s: { stageId: string }) => s.stageId === "work")).toMatchObject({ count: 5, baselineP50: null, regression: false });

    // Another tenant's runs never count.
    expect((await rival.get("/v1/workflows/stats-wf/stats")).body).toEqual({ workflow: "stats-wf", runs: 0, stages: [] });
    const bad = await studio.get("/v1/workflows/stats-wf/stats?runs=0");
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toMatch(/runs/);
  }, TIMEOUT);

  it("refuses the audit page to a viewer and shows an admin the tenant's own entries, a verified chain and its last checkpoint", async () => {
    const refused = await viewer.get("/v1/audit");
    expect(refused.status).toBe(403);
    const page = await admin.get("/v1/audit?limit=1000");
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    expect(page.body.entries.length).toBeGreaterThan(10);
    for (const e of page.body.entries) expect(e.tenant).toBe("studio");
    expect(page.body.entries.some((e: { action: string }) => e.action === "runs:submit")).toBe(true);
    const text = JSON.stringify(page.body);
    for (const id of rivalRuns) expect(text).not.toContain(id);
    expect(page.body.verify).toMatchObject({ ok: true, problem: null });
    expect(page.body.verify.checked).toBeGreaterThan(page.body.entries.length);
    expect(page.body.lastCheckpoint).toMatchObject({ seq: expect.any(Number), keyId: expect.any(String) });
    const seqs = page.body.entries.map((e: { seq: number }) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    // Paged newest first: the next page starts below the last seq shown.
    const first = await admin.get("/v1/audit?limit=3");
    expect(first.body.entries).toHaveLength(3);
    expect(first.body.nextBefore).toBe(first.body.entries[2].seq);
    const next = await admin.get(`/v1/audit?limit=3&before=${first.body.nextBefore}`);
    expect(next.body.entries[0].seq).toBeLessThan(first.body.nextBefore);
    expect((await admin.get("/v1/audit?limit=0")).body.error.field).toMatch(/limit/);
  }, TIMEOUT);

  it("lists the keyring's versions to an admin, never a key's bytes", async () => {
    expect((await viewer.get("/v1/keyring")).status).toBe(403);
    const keyring = await admin.get("/v1/keyring");
    expect(keyring.status).toBe(200);
    expect(keyring.body.versions).toEqual([{ version: 1, createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), retired: false, active: true }]);
    const key = readFileSync(join(platform.keyringDir, "v1"), "utf8").trim();
    const text = JSON.stringify(keyring.body);
    expect(text).not.toContain(key);
    expect(text).not.toContain(Buffer.from(key, "base64").toString("hex"));
  }, TIMEOUT);

  it("reports a tampered audit line: verify is no longer ok", async () => {
    const logFile = join(platform.dataDir, "audit", "log.jsonl");
    const bytes = readFileSync(logFile);
    // An early entry's outcome flipped in place (same length, so the lines after it stay where they are).
    const at = bytes.indexOf('"outcome":"success"', bytes.indexOf("\n") + 1);
    expect(at).toBeGreaterThan(0);
    const fd = openSync(logFile, "r+");
    writeSync(fd, Buffer.from('"outcome":"failure"'), 0, 19, at);
    closeSync(fd);
    const page = await admin.get("/v1/audit");
    expect(page.status).toBe(200);
    expect(page.body.verify.ok).toBe(false);
    expect(page.body.verify.problem).toEqual(expect.any(String));
  }, TIMEOUT);
});
