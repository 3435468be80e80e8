/**
 * The real agent process against hostile transport and input: DNS rebinding (unexpected Host), cross-site
 * Origins, compressed bodies (gzip bombs), oversized headers, path traversal in names, huge graphs, and
 * plain HTTP on a non-loopback address only with a loud --insecure.
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, client, createPlatform, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess, type TestPlatform, removePlatform } from "./harness.ts";

const TIMEOUT = 180_000;

/** A raw HTTP request, so Host and other headers fetch will not let us set can be sent. */
function rawRequest(url: string, options: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer }): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    // A fresh connection each time: the agent may close one whose body it refused to read.
    const req = request({ hostname, port, method: options.method ?? "GET", path: options.path, headers: options.headers, agent: false }, (res) => {
      answered = true;
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    // Once answered, a reset while the rest of a refused body is still being sent is expected.
    req.on("error", (err) => (answered ? undefined : reject(err)));
    req.end(options.body);
  });
}

describe("agent transport checks and bad input", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let auth: Record<string, string>;
  let runId: string;

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    agent = await startAgentProcess(platform);
    auth = { authorization: `Bearer ${platform.tokens.studio!}` };
    const studio = client(agent.url, platform.tokens.studio!);
    const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("small", [{ id: "only", ms: 10 }]) });
    runId = (await studio.waitForRun(submitted.body.id)).id;
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it("refuses a Host header that is not loopback (DNS rebinding) and a cross-site Origin; accepts the same origin", async () => {
    const rebound = await rawRequest(agent.url, { path: "/v1/runs", headers: { ...auth, host: "attacker.example:80" } });
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body).error.code).toBe("unexpected-host");
    const crossSite = await rawRequest(agent.url, { path: "/v1/runs", headers: { ...auth, origin: "https://attacker.example" } });
    expect(crossSite.status).toBe(403);
    expect(JSON.parse(crossSite.body).error.code).toBe("cross-origin");
    const { host } = new URL(agent.url);
    expect((await rawRequest(agent.url, { path: "/v1/runs", headers: { ...auth, origin: `http://${host}` } })).status).toBe(200);
  });

  it("refuses gzip bodies (a gzip bomb never expands) and answers 431 to oversized headers", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(200 * 1024);
    const gz = await rawRequest(agent.url, {
      method: "POST",
      path: "/v1/runs",
      headers: { ...auth, "content-type": "application/json", "content-encoding": "gzip", "content-length": String(bomb.length) },
      body: bomb,
    });
    expect(gz.status).toBe(415);
    expect(JSON.parse(gz.body).error.field).toBe("content-encoding");
    const big = await rawRequest(agent.url, { path: "/v1/runs", headers: { ...auth, "x-padding": "a".repeat(64 * 1024) } });
    expect(big.status).toBe(431);
  });

  it("answers 4xx to path traversal and odd names in artifact names, stage ids and run ids, touching no file outside its own", async () => {
    for (const path of [
      `/v1/runs/${runId}/artifacts/..%2F..%2F..%2Fagent.db`,
      `/v1/runs/${runId}/artifacts/%2Fetc%2Fpasswd`,
      `/v1/runs/${runId}/artifacts/only.txt?stage=..%2F..`,
      `/v1/runs/${runId}/stages/..%2F..%2Fagent.db/logs`,
      `/v1/runs/${runId}/stages/%2E%2E/logs`,
      `/v1/runs/..%2F..%2Fetc/artifacts/passwd`,
      `/v1/runs/${runId}/artifacts/only.txt%00.png`,
    ]) {
      const response = await rawRequest(agent.url, { path, headers: auth });
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      expect(response.body, path).not.toContain("root:");
    }
  });

  it("refuses a graph of more stages than the model allows with a 4xx naming the field", async () => {
    const stages = Array.from({ length: 10_001 }, (_, i) => ({ id: `s${i}`, resources: { gpus: 0 } }));
    const huge = { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "huge" }, spec: { stages } };
    const response = await client(agent.url, platform.tokens.studio!).post("/v1/runs", { workflow: huge });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.body.error.field ?? response.body.error.code).toMatch(/workflow|body/);
  });
});

describe("gpufabric agent --insecure", () => {
  it(
    "serves plain HTTP on a non-loopback address only when asked, and logs it loudly",
    async () => {
      const platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
      const child = spawn(
        process.execPath,
        [join(REPO_ROOT, "bin/gpufabric.mjs"), "agent", "--config", platform.configFile, "--data-dir", platform.dataDir, "--host", "0.0.0.0", "--port", "0", "--inventory", "simulated", "--insecure"],
        { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] }
      );
      let output = "";
      child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        await waitFor("the agent to listen", () => output.includes("agent listening") || child.exitCode !== null, 60_000);
        expect(output).toContain("agent listening");
        expect(output).toMatch(/"level":50[^\n]*INSECURE: serving plain HTTP on the non-loopback address 0\.0\.0\.0/);
      } finally {
        child.kill("SIGTERM");
        await exited;
        removePlatform(platform);
      }
    },
    TIMEOUT
  );
});
