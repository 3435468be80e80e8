/**
 * What `npm start` promises: `gpufabric dev` prints the dashboard's address with a login link, and opening
 * that link in a real browser (Debian's Chromium) shows the example runs, each with its timeline once it ran.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeBrowser, ensureUiBuilt, launchBrowser, newContext, REPO_ROOT, screenshot, watchPage } from "../support/browser.ts";

const TIMEOUT = 240_000;

/** Resolves with the output so far once `pattern` matches it; rejects when the process exits first or time runs out. */
function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = output().match(pattern);
      if (m) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`gpufabric dev exited (${code}) before printing ${pattern}:\n${output()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output()}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off("data", check);
      child.off("exit", onExit);
    };
    child.stdout?.on("data", check);
    child.on("exit", onExit);
    check();
  });
}

describe("npm start's dashboard", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gpufabric-dev-ui-"));
  let dev: ChildProcess | undefined;
  let out = "";
  let browser: Browser | undefined;

  beforeAll(async () => {
    await ensureUiBuilt();
    dev = spawn(process.execPath, ["bin/gpufabric.mjs", "dev", "--data-dir", dataDir], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], detached: false });
    dev.stdout!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    dev.stderr!.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    browser = await launchBrowser();
  }, TIMEOUT);

  afterAll(async () => {
    await closeBrowser(browser);
    if (dev && dev.exitCode === null) {
      dev.kill("SIGTERM");
      await new Promise((r) => dev!.once("exit", r));
    }
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it("prints the dashboard's address, and its link shows the example runs with their timelines", async () => {
    const [, base, link] = await waitForOutput(dev!, () => out, /dashboard: (http:\/\/127\.0\.0\.1:\d+)\/ui\/ .*open (\S+#token=\S+) as/, 120_000);
    // The examples are submitted after the banner: wait for them to finish before looking.
    await waitForOutput(dev!, () => out, /serving on /, 180_000);
    const context = await newContext(browser!);
    try {
      const page = await context.newPage();
      const watch = await watchPage(page);
      await page.goto(link!);
      await page.locator("[data-testid=whoami]").waitFor({ state: "visible", timeout: 15_000 });
      // The token left the address bar as soon as it was traded for the session cookie.
      expect(page.url()).not.toContain("token=");
      const rows = page.locator("[data-testid=run-row]");
      await rows.first().waitFor({ state: "visible", timeout: 15_000 });
      expect(await rows.count()).toBeGreaterThanOrEqual(1);
      const statuses = await rows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { status?: string } }).dataset.status));
      expect(statuses.every((s) => s === "succeeded"), `example runs: ${statuses.join(", ")}`).toBe(true);
      await screenshot(page, "dev-runs-list");
      // Each example run's page has a timeline bar per attempt.
      const ids = await rows.evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { runId?: string } }).dataset.runId!));
      for (const id of ids) {
        await page.goto(`${base}/ui/#/runs/${id}`);
        await page.locator("[data-testid=timeline-bar]").first().waitFor({ state: "visible", timeout: 15_000 });
        const run = (await page.evaluate(async (u) => (await fetch(u, { credentials: "same-origin" })).json(), `${base}/v1/runs/${id}`)) as {
          workflow: string;
          attempts: Array<{ gpus: string[] }>;
        };
        const expected = run.attempts.reduce((n, a) => n + Math.max(1, a.gpus.length), 0);
        expect(await page.locator("[data-testid=timeline-bar]").count(), `timeline bars of ${run.workflow}`).toBe(expected);
        const shot = await screenshot(page, `dev-run-${run.workflow}`);
        // The README shows the contact sheet's run; it changes on purpose only.
        if (run.workflow === "contact-sheet" && process.env.GPUFABRIC_UPDATE_SCREENSHOTS === "1") {
          mkdirSync(join(REPO_ROOT, "docs", "screenshots"), { recursive: true });
          copyFileSync(shot, join(REPO_ROOT, "docs", "screenshots", "example-run.png"));
        }
      }
      expect(await watch.cspViolations()).toEqual([]);
    } finally {
      await context.close();
    }
  }, TIMEOUT);
});
