/** With security.tls.enabled the agent serves HTTPS with the certificate Secret's tls.crt and tls.key. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { get, type RequestOptions } from "node:https";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createPlatform, startAgentProcess, type AgentProcess, type TestPlatform, removePlatform } from "./harness.ts";

// The certificates are made with openssl (CI installs it). Without it these tests fail, loudly: a
// missing openssl must not pass as a green (or skipped) TLS test.
const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });

/** A self-signed P-256 certificate for 127.0.0.1 (the agent's), or a CA when `ca` is set. */
function selfSigned(dir: string, name: string, subject: string): { key: string; crt: string } {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", subject, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt);
  return { key, crt };
}

/** A client certificate signed by `ca`. */
function clientCertificate(dir: string, name: string, ca: { key: string; crt: string }): { key: string; crt: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const crt = join(dir, `${name}.crt`);
  openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", key, "-out", csr);
  openssl("x509", "-req", "-in", csr, "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial", "-days", "1", "-out", crt);
  return { key, crt };
}

function httpsGet(url: string, options: RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, options, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

describe("agent with TLS", () => {
  it("has openssl to make its certificates", () => {
    expect(hasOpenssl, "openssl is not installed: these tests make their certificates with it (apt-get install openssl)").toBe(true);
  });

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
    selfSigned(certDir, "tls", "/CN=gpufabric-test");
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

  it("with a client CA, requires a client certificate signed by it on every route but the probes", async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
    platform = createPlatform({ devices: [{ id: "g0", node: "n0", memoryMiB: 8192 }] });
    const certDir = join(platform.dir, "tls");
    const caDir = join(platform.dir, "client-ca");
    mkdirSync(certDir);
    mkdirSync(caDir);
    const server = selfSigned(certDir, "tls", "/CN=gpufabric-agent");
    const ca = selfSigned(platform.dir, "workers-ca", "/CN=gpufabric-workers");
    const rogueCa = selfSigned(platform.dir, "rogue-ca", "/CN=rogue");
    writeFileSync(join(caDir, "ca.crt"), readFileSync(ca.crt));
    const worker = clientCertificate(platform.dir, "worker-1", ca);
    const rogue = clientCertificate(platform.dir, "rogue-1", rogueCa);
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.security.tls = { enabled: true, certificate: { secretName: "tls", mountPath: certDir }, clientCa: { secretName: "workers-ca", mountPath: caDir } };
    writeFileSync(platform.configFile, JSON.stringify(config));
    agent = await startAgentProcess(platform);

    const trust = { ca: readFileSync(server.crt) };
    const bearer = { authorization: `Bearer ${platform.tokens.studio}` };
    const withWorker = { ...trust, cert: readFileSync(worker.crt), key: readFileSync(worker.key) };
    const withRogue = { ...trust, cert: readFileSync(rogue.crt), key: readFileSync(rogue.key) };

    expect((await httpsGet(`${agent.url}/healthz`, trust)).status).toBe(200);
    const bare = await httpsGet(`${agent.url}/v1/gpus`, { ...trust, headers: bearer });
    expect(bare.status).toBe(401);
    expect(JSON.parse(bare.body).error.code).toBe("unauthenticated:client-certificate");
    const forged = await httpsGet(`${agent.url}/v1/gpus`, { ...withRogue, headers: bearer });
    expect(forged.status).toBe(401);
    // The certificate admits the connection; the token still decides who the caller is.
    expect((await httpsGet(`${agent.url}/v1/gpus`, withWorker)).status).toBe(401);
    const ok = await httpsGet(`${agent.url}/v1/gpus`, { ...withWorker, headers: bearer });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).gpus).toHaveLength(1);
  }, 120_000);
});
