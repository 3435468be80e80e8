/**
 * Headless Chromium for the dashboard's browser tests and benchmark: Debian's `chromium` driven by
 * playwright-core (no browser download), the built front end made current before a page loads it, and
 * screenshots written under reports/screenshots/ (CI's output folder, not committed).
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CHROMIUM = process.env.GPUFABRIC_CHROMIUM ?? "/usr/bin/chromium";
export const SCREENSHOTS_DIR = join(REPO_ROOT, "reports", "screenshots");
const UI_SOURCE = join(REPO_ROOT, "ui");
const UI_INDEX = join(REPO_ROOT, "dist", "ui", "index.html");
// Beside dist/ rather than in it: the build may empty dist/ui while it runs.
const BUILD_LOCK = join(REPO_ROOT, "dist", ".ui-build.lock");

/** The headless flags the project's CI runs Chromium with (no sandbox: CI containers run as root). */
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does), or point GPUFABRIC_CHROMIUM at a Chromium binary`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/**
 * Closes the browser without letting a hung close hold the suite: after 10 s it is left to playwright-core,
 * which kills the browsers it launched when this process exits.
 */
export async function closeBrowser(browser: Browser | undefined): Promise<void> {
  if (!browser) return;
  await Promise.race([browser.close().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
}

/** A fresh context (its own cookie jar) per test, so that one test's session never leaks into another. */
export async function newContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
}

/** Newest modification time of any file under `dir` (0 when it is absent). */
function newestMtime(dir: string): number {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export function uiIsCurrent(): boolean {
  return existsSync(UI_INDEX) && statSync(UI_INDEX).mtimeMs >= newestMtime(UI_SOURCE);
}

/**
 * Runs `npm run build:ui` when dist/ui/index.html is missing or older than a file under ui/. Test files
 * run in parallel workers: a lock file (created exclusively) lets one build while the others wait for it,
 * then find the build current. A lock older than 5 minutes is a crashed builder's and is taken over.
 */
export async function ensureUiBuilt(timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  mkdirSync(join(REPO_ROOT, "dist"), { recursive: true });
  while (!uiIsCurrent()) {
    let fd: number | undefined;
    try {
      fd = openSync(BUILD_LOCK, "wx");
    } catch {
      try {
        if (Date.now() - statSync(BUILD_LOCK).mtimeMs > 300_000) rmSync(BUILD_LOCK, { force: true });
      } catch {
        // removed by its owner meanwhile
      }
      if (Date.now() > deadline) throw new Error(`the front end was not built within ${timeoutMs} ms (${BUILD_LOCK} held)`);
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    try {
      writeSync(fd, String(process.pid));
      if (uiIsCurrent()) return;
      const build = spawnSync("npm", ["run", "build:ui"], { cwd: REPO_ROOT, encoding: "utf8", timeout: timeoutMs });
      if (build.status !== 0 || !existsSync(UI_INDEX)) {
        throw new Error(`npm run build:ui failed (exit ${build.status ?? build.signal}):\n${build.stdout}\n${build.stderr}`);
      }
      return;
    } finally {
      closeSync(fd);
      rmSync(BUILD_LOCK, { force: true });
    }
  }
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const path = join(SCREENSHOTS_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

interface CspEvent {
  readonly violatedDirective: string;
  readonly blockedURI: string;
  readonly sourceFile: string;
  readonly lineNumber: number;
}
interface PageGlobals {
  __cspViolations: string[];
  readonly document: { addEventListener(type: string, listener: (e: CspEvent) => void): void };
}

/**
 * Collects what a page reports about CSP: `securitypolicyviolation` events (recorded in the page from
 * before its first script runs) and console messages naming the Content Security Policy, plus page errors.
 */
export async function watchPage(page: Page): Promise<{ cspViolations(): Promise<string[]>; consoleErrors: string[] }> {
  const consoleErrors: string[] = [];
  const cspConsole: string[] = [];
  // These callbacks run in the page: `globalThis` is its window (the project compiles without the DOM types).
  await page.addInitScript(() => {
    const w = globalThis as unknown as PageGlobals;
    w.__cspViolations = [];
    w.document.addEventListener("securitypolicyviolation", (e: CspEvent) => {
      w.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  page.on("console", (message: ConsoleMessage) => {
    if (message.type() === "error") consoleErrors.push(message.text());
    if (/content security policy/i.test(message.text())) cspConsole.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(`page error: ${error.message}`));
  return {
    consoleErrors,
    async cspViolations() {
      const fromPage = await page.evaluate(() => (globalThis as unknown as PageGlobals).__cspViolations ?? []).catch(() => []);
      return [...cspConsole, ...fromPage];
    },
  };
}

/** Logs in the way a person does: pastes the token into the login form and submits it. */
export async function logIn(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/ui/#/login`);
  await page.locator("input[name=token]").fill(token);
  await page.locator("button[type=submit]").click();
  await page.locator("[data-testid=whoami]").waitFor({ state: "visible", timeout: 15_000 });
}
