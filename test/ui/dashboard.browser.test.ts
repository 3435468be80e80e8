/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the real agent
 * process with simulated GPUs: a person logs in by pasting a token, sees a submitted run appear and
 * progress live, opens it (one timeline bar per attempt on the lane of its GPU, the DAG with exactly the
 * workflow's edges), the GPU, fair-share and audit views; a viewer cannot cancel; another tenant's run
 * never shows; the strict CSP holds with no violation. Screenshots land in reports/screenshots/, and the
 * README's ones are refreshed in docs/screenshots/.
 */
import { appendFileSync, copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken } from "../../runtime/security/identity/index.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, tenant, waitFor, type AgentProcess, type TestPlatform } from "../agent/service/harness.ts";
import { closeBrowser, ensureUiBuilt, launchBrowser, logIn, newContext, REPO_ROOT, screenshot, watchPage } from "../support/browser.ts";

const SETUP_TIMEOUT = 240_000;
const DOCS_SCREENSHOTS = join(REPO_ROOT, "docs", "screenshots");
const DEVICES = [
  { id: "local-g0", node: "n0", memoryMiB: 24_576 },
  { id: "local-g1", node: "n0", memoryMiB: 24_576 },
];
/** A diamond: render, then two upscales side by side (one per GPU), then the sheet. */
const DIAMOND = [
  { id: "render", ms: 1500 },
  { id: "upscale-a", needs: ["render"], ms: 1500 },
  { id: "upscale-b", needs: ["render"], ms: 1500 },
  { id: "sheet", needs: ["upscale-a", "upscale-b"], ms: 1000 },
];
const DIAMOND_EDGES = ["render->upscale-a", "render->upscale-b", "upscale-a->sheet", "upscale-b->sheet"];

describe("the dashboard in Chromium", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let browser: Browser;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    await ensureUiBuilt();
    const studio = {
      ...tenant("studio"),
      roles: [
        { subject: "alice", role: "submitter" as const },
        { subject: "vera", role: "viewer" as const },
        { subject: "ada", role: "admin" as const },
      ],
    };
    platform = createPlatform({ devices: DEVICES, tenants: [studio, tenant("rival")] });
    for (const subject of ["alice", "vera", "ada"]) {
      const generated = generateToken(subject);
      appendFileSync(join(platform.dir, "tokens", "studio"), `${generated.line}\n`);
      tokens[subject] = generated.token;
    }
    tokens.rival = platform.tokens.rival!;
    // Side by side: Chromium's start and the agent's take seconds each on a small machine.
    [agent, browser] = await Promise.all([startAgentProcess(platform), launchBrowser()]);
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    // Each step runs whatever the one before it did: a browser or agent left running outlives the suite.
    await closeBrowser(browser);
    await agent?.stop().catch(() => undefined);
    if (platform) removePlatform(platform);
  }, 60_000);

  const api = (who: string) => client(agent.url, tokens[who]!);

  /** A page in a fresh context, logged in as `who`; the test's body runs, then CSP is checked and the context closed. */
  async function asUser(who: string, body: (page: Page, context: BrowserContext) => Promise<void>): Promise<void> {
    const context = await newContext(browser);
    const page = await context.newPage();
    try {
      const watch = await watchPage(page);
      await logIn(page, agent.url, tokens[who]!);
      await body(page, context);
      expect(await watch.cspViolations(), "Content-Security-Policy violations").toEqual([]);
    } catch (err) {
      // What the page showed when the test failed, for the CI report.
      await screenshot(page, `failed-${expect.getState().currentTestName?.replace(/[^a-z0-9]+/gi, "-").slice(0, 80) ?? "test"}`).catch(() => undefined);
      throw err;
    } finally {
      await context.close().catch(() => undefined);
    }
  }

  async function submit(who: string, stages: Parameters<typeof sleepyWorkflow>[1], name = "diamond"): Promise<string> {
    const answer = await api(who).post("/v1/runs", { workflow: sleepyWorkflow(name, stages) });
    expect(answer.status, JSON.stringify(answer.body)).toBe(202);
    return answer.body.id as string;
  }

  const row = (page: Page, id: string, status?: string) =>
    page.locator(`[data-testid=run-row][data-run-id="${id}"]${status ? `[data-status="${status}"]` : ""}`);

  // The README's pictures change on purpose only: a test run leaves the tree clean unless asked to refresh them.
  function keepForReadme(path: string, name: string): void {
    if (process.env.GPUFABRIC_UPDATE_SCREENSHOTS !== "1") return;
    mkdirSync(DOCS_SCREENSHOTS, { recursive: true });
    copyFileSync(path, join(DOCS_SCREENSHOTS, `${name}.png`));
  }

  let diamondId: string;

  it("serves /ui with the strict CSP and logs in with a pasted token", async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      const response = await page.goto(`${agent.url}/ui/`);
      expect(response?.status()).toBe(200);
      const csp = response?.headers()["content-security-policy"] ?? "";
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      const watch = await watchPage(page);
      await logIn(page, agent.url, tokens.alice!);
      await expect.poll(() => page.locator("[data-testid=whoami]").textContent()).toContain("alice");
      // The session is an HttpOnly, SameSite=Strict cookie: script on the page cannot read it.
      const cookie = (await context.cookies()).find((c) => c.name === "gf_session");
      expect(cookie?.httpOnly).toBe(true);
      expect(cookie?.sameSite).toBe("Strict");
      expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).not.toContain("gf_session");
      expect(await watch.cspViolations()).toEqual([]);
      expect(watch.consoleErrors.filter((e) => /content security policy/i.test(e))).toEqual([]);
    } finally {
      await context.close().catch(() => undefined);
    }
  });

  it("shows a submitted run in the runs list and follows its status live, without a reload", async () => {
    await asUser("alice", async (page) => {
      await page.goto(`${agent.url}/ui/#/runs`);
      // Set on this document: a reload would lose it.
      await page.evaluate(() => ((globalThis as unknown as { __noReload: boolean }).__noReload = true));
      diamondId = await submit("alice", DIAMOND);
      await row(page, diamondId).waitFor({ timeout: 15_000 });
      await row(page, diamondId, "running").waitFor({ timeout: 30_000 });
      await row(page, diamondId, "succeeded").waitFor({ timeout: 45_000 });
      expect(await page.evaluate(() => (globalThis as unknown as { __noReload?: boolean }).__noReload)).toBe(true);
      keepForReadme(await screenshot(page, "runs-list"), "runs-list");
    });
  });

  it("opens the run: one timeline bar per attempt on its GPU's lane, and the DAG with exactly the workflow's edges", async () => {
    expect(diamondId, "the run of the previous test").toBeDefined();
    const view = (await api("alice").waitForRun(diamondId, ["succeeded"], 45_000)) as {
      edges: Array<{ from: string; to: string }>;
      attempts: Array<{ stageId: string; number: number; gpus: string[] }>;
    };
    expect(view.edges.map((e) => `${e.from}->${e.to}`).sort()).toEqual(DIAMOND_EDGES);
    await asUser("alice", async (page) => {
      await page.goto(`${agent.url}/ui/#/runs/${diamondId}`);
      await page.locator("[data-testid=run-status][data-status=succeeded]").waitFor({ timeout: 15_000 });
      await page.locator("svg[data-testid=dag] [data-testid=dag-edge]").first().waitFor({ timeout: 15_000 });
      const edges = await page
        .locator("svg[data-testid=dag] [data-testid=dag-edge]")
        .evaluateAll((els) => els.map((e) => `${e.getAttribute("data-from")}->${e.getAttribute("data-to")}`));
      expect(edges.sort()).toEqual(DIAMOND_EDGES);
      const nodes = await page
        .locator("svg[data-testid=dag] [data-testid=dag-node]")
        .evaluateAll((els) => els.map((e) => `${e.getAttribute("data-stage-id")}:${e.getAttribute("data-status")}`));
      expect(nodes.sort()).toEqual(DIAMOND.map((s) => `${s.id}:succeeded`).sort());

      // Every attempt the API reports has its bar on the lane of each GPU it used, and there is no other bar.
      expect(view.attempts.length).toBeGreaterThanOrEqual(DIAMOND.length);
      await page.locator("[data-testid=timeline] [data-testid=timeline-bar]").first().waitFor({ timeout: 15_000 });
      let expected = 0;
      for (const attempt of view.attempts) {
        expect(attempt.gpus.length).toBeGreaterThan(0);
        for (const gpu of attempt.gpus) {
          expected++;
          const bar = page.locator(
            `[data-testid=timeline] [data-testid=timeline-lane][data-gpu="${gpu}"] [data-testid=timeline-bar][data-stage-id="${attempt.stageId}"][data-attempt="${attempt.number}"]`
          );
          expect(await bar.count(), `bar of ${attempt.stageId} #${attempt.number} on ${gpu}`).toBe(1);
          expect(await bar.locator("[data-phase=execute]").count(), `execute segment of ${attempt.stageId}`).toBe(1);
        }
      }
      expect(await page.locator("[data-testid=timeline] [data-testid=timeline-bar]").count()).toBe(expected);
      // The upscales ran side by side, so both GPUs have a lane.
      for (const device of DEVICES) expect(await page.locator(`[data-testid=timeline-lane][data-gpu="${device.id}"]`).count()).toBe(1);
      keepForReadme(await screenshot(page, "run-page"), "run-page");
    });
  });

  it("shows the GPUs by node, simulated devices marked, and the fair share", async () => {
    const gpus = (await api("alice").get("/v1/gpus")).body as { gpus: Array<{ id: string; node: string; simulated: boolean }> };
    expect(gpus.gpus.map((g) => g.id).sort()).toEqual(DEVICES.map((d) => d.id));
    await asUser("alice", async (page) => {
      await page.goto(`${agent.url}/ui/#/gpus`);
      for (const gpu of gpus.gpus) {
        const card = page.locator(`[data-testid=gpu-node][data-node="${gpu.node}"] [data-testid=gpu-card][data-gpu="${gpu.id}"]`);
        await card.waitFor({ timeout: 15_000 });
        expect(await card.getAttribute("data-simulated")).toBe(String(gpu.simulated));
        expect(gpu.simulated).toBe(true);
      }
      keepForReadme(await screenshot(page, "gpus"), "gpus");

      await page.locator("a[data-testid=nav-fairshare]").click();
      await page.locator("[data-testid=fairshare-row][data-tenant=studio]").waitFor({ timeout: 15_000 });
      // Another tenant is never named: the others are summed into one row.
      expect(await page.locator("[data-testid=fairshare-row][data-tenant=rival]").count()).toBe(0);
      await screenshot(page, "fairshare");
    });
  });

  it("shows an admin the audit log with its verify status, and the keyring versions", async () => {
    await asUser("ada", async (page) => {
      await page.goto(`${agent.url}/ui/#/admin`);
      await page.locator("[data-testid=audit-entry]").first().waitFor({ timeout: 15_000 });
      await page.locator("[data-testid=audit-verify][data-ok=true]").waitFor({ timeout: 15_000 });
      expect(await page.locator("[data-testid=keyring-version]").count()).toBeGreaterThanOrEqual(1);
      await screenshot(page, "admin");
    });
  });

  it("gives a viewer no working cancel: no enabled button, and a cancel sent from the page is refused 403", async () => {
    const id = await submit("alice", [{ id: "hold", ms: 60_000 }], "long");
    try {
      await asUser("vera", async (page) => {
        await page.goto(`${agent.url}/ui/#/runs/${id}`);
        await page.locator("[data-testid=run-status]").waitFor({ timeout: 15_000 });
        const cancel = page.locator("button[data-testid=cancel-run]");
        if ((await cancel.count()) > 0) {
          expect(await cancel.isDisabled()).toBe(true);
          await cancel.click({ force: true }).catch(() => undefined);
        }
        // The same request the button would send, with the session's CSRF token: the role refuses it.
        const status = await page.evaluate(async (runId) => {
          const session = (await (await fetch("/ui/session")).json()) as { csrfToken: string };
          const answer = await fetch(`/v1/runs/${runId}/cancel`, { method: "POST", headers: { "x-csrf-token": session.csrfToken } });
          return answer.status;
        }, id);
        expect(status).toBe(403);
        expect((await api("alice").get(`/v1/runs/${id}`)).body.status).not.toBe("cancelled");
      });
    } finally {
      await api("alice").post(`/v1/runs/${id}/cancel`);
    }
  });

  it("never shows another tenant's run: not in the list, and its URL answers not found", async () => {
    const rivalId = await submit("rival", [{ id: "secret", ms: 1000 }], "rival-work");
    const ownId = await submit("alice", [{ id: "mine", ms: 1000 }], "own-work");
    await asUser("alice", async (page) => {
      await page.goto(`${agent.url}/ui/#/runs`);
      await row(page, ownId).waitFor({ timeout: 15_000 });
      // Both finish while the list is open: any live event of the rival's run would have arrived by then.
      await api("rival").waitForRun(rivalId, ["succeeded", "failed"], 45_000);
      await api("alice").waitForRun(ownId, ["succeeded", "failed"], 45_000);
      await row(page, ownId, "succeeded").waitFor({ timeout: 15_000 });
      expect(await row(page, rivalId).count()).toBe(0);
      expect(await page.content()).not.toContain(rivalId);
      const listed = await page.evaluate(async () => ((await (await fetch("/v1/runs?limit=100")).json()) as { runs: Array<{ id: string }> }).runs.map((r: { id: string }) => r.id));
      expect(listed).toContain(ownId);
      expect(listed).not.toContain(rivalId);

      await page.goto(`${agent.url}/ui/#/runs/${rivalId}`);
      await page.locator("[data-testid=error]").waitFor({ timeout: 15_000 });
      // The agent's 404 reads "no run '<id>'" (as for an id that never existed); a page may also say "not found".
      expect(await page.locator("[data-testid=error]").textContent()).toMatch(/not found|no run/i);
      expect(await page.evaluate(async (id) => (await fetch(`/v1/runs/${id}`)).status, rivalId)).toBe(404);
      expect(await page.locator("[data-testid=run-status]").count()).toBe(0);
      expect(await page.locator("[data-testid=dag-node]").count()).toBe(0);
    });
    await waitFor("nothing of the rival's run in the agent's answer to studio", async () => (await api("alice").get(`/v1/runs/${rivalId}`)).status === 404);
  });
});
