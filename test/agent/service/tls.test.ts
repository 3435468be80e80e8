/** With security.tls.enabled the agent serves HTTPS with the certificate Secret's tls.crt and tls.key. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createPlatform, startAgentProcess, type AgentProcess, type TestPlatform, removePlatform } from "./harness.ts";

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

describe.skipIf(!hasOpenssl)("agent with TLS", () => {
  let platform: TestPlatform | undefined;
  let agent: AgentProcess | undefined;
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it("answers over HTTPS with its certificate and refuses plain HTTP", async () => {
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    const certDir = join(platform.dir, "tls");
    mkdirSync(certDir);
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=gpufabric-test",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(certDir, "tls.key"),
        "-out",
        join(certDir, "tls.crt"),
      ],
      { stdio: "ignore" }
    );
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.security.tls = { enabled: true, certificate: { secretName: "tls", mountPath: certDir } };
    writeFileSync(platform.configFile, JSON.stringify(config));
    agent = await startAgentProcess(platform);
    expect(agent.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    const ca = readFileSync(join(certDir, "tls.crt"));
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      get(`${agent!.url}/v1/gpus`, { ca, headers: { authorization: `Bearer ${platform!.tokens.studio}` } }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      }).on("error", reject);
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).gpus).toHaveLength(1);
    await expect(fetch(agent.url.replace("https:", "http:") + "/healthz")).rejects.toThrow();
  }, 120_000);
});
