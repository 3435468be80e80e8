/**
 * OIDC bearer tokens against the real agent process: a JWKS served from 127.0.0.1, and the route ×
 * credential matrix (none, malformed, expired, wrong issuer, wrong audience, alg none, HS/RS confusion,
 * another tenant's token) over HTTP on every route the agent declares.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../../runtime/agent/api/routes.ts";
import { PUBLIC, WORKER } from "../../../runtime/security/authz/index.ts";
import { ACTIONS, isAction } from "../../../runtime/security/authz/actions.ts";
import { client, createPlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform, removePlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const ISSUER = "https://idp.example.test/";
const AUDIENCE = "gpufabric-agent";
const now = () => Math.floor(Date.now() / 1000);

describe("agent API with OIDC bearer tokens", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let jwksServer: Server;
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let runId: string;

  const claims = (overrides: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: AUDIENCE, sub: "tester", tenant: "studio", iat: now() - 30, exp: now() + 600, ...overrides });
  const sign = (payload: JWTPayload, key: CryptoKey | Uint8Array = rsa.privateKey, alg = "RS256") => new SignJWT(payload).setProtectedHeader({ alg, kid: "rsa-1" }).sign(key);

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256", { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" }] });
    jwksServer = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    const config = JSON.parse(readFileSync(platform.configFile, "utf8"));
    config.security.auth.oidc = {
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`,
      algorithms: ["RS256"],
      maxTokenAgeSeconds: 3600,
      requiredClaims: [],
      tenantClaim: "tenant",
    };
    writeFileSync(platform.configFile, JSON.stringify(config));
    poolName = config.deployment.pool;
    agent = await startAgentProcess(platform);
    const studio = client(agent.url, await sign(claims()));
    const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("oidc", [{ id: "only", ms: 10 }]) });
    expect(submitted.status).toBe(202);
    runId = (await studio.waitForRun(submitted.body.id)).id;
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    jwksServer?.close();
    if (platform) removePlatform(platform);
  });

  let poolName = "";
  const pathOf = (template: string) => template.replace(":runId", runId).replace(":name", "only.txt").replace(":stageId", "only").replace(":pool", poolName);
  const call = async (method: string, path: string, token: string | undefined) => {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    // Only status and headers matter; event streams are closed as soon as they answer.
    const controller = new AbortController();
    const response = await fetch(`${agent.url}${path}`, {
      method,
      headers: method === "POST" ? { ...headers, "content-type": "application/json" } : headers,
      ...(method === "POST" && { body: path === "/v1/runs" ? JSON.stringify({ workflowRef: "contact-sheet" }) : "{}" }),
      signal: controller.signal,
    });
    controller.abort();
    return response.status;
  };

  // Tenants' routes: a worker's route (action WORKER) takes no tenant's token, however valid.
  const protectedRoutes = ROUTES.filter((r) => r.action !== PUBLIC && r.action !== WORKER && !(r.method === "POST" && r.path === "/v1/runs/:runId/cancel"));

  it("answers 401 on every protected route to missing, malformed, expired, wrong-issuer, wrong-audience, alg-none and HS/RS-confused tokens", async () => {
    const bad: Array<[string, string | undefined]> = [
      ["none", undefined],
      ["malformed", "not.a.jwt"],
      ["expired", await sign(claims({ iat: now() - 1200, exp: now() - 600 }))],
      ["wrong issuer", await sign(claims({ iss: "https://evil.example.test/" }))],
      ["wrong audience", await sign(claims({ aud: "another-service" }))],
      ["alg none", new UnsecuredJWT(claims()).encode()],
      ["HS/RS confusion", await sign(claims(), new TextEncoder().encode(await exportSPKI(rsa.publicKey)), "HS256")],
    ];
    for (const route of ROUTES.filter((r) => r.action !== PUBLIC)) {
      for (const [what, token] of bad) expect(await call(route.method, pathOf(route.path), token), `${what} on ${route.method} ${route.path}`).toBe(401);
    }
  });

  it("answers another tenant's valid token with 404 on every route naming a run, and a valid token with success", async () => {
    const rival = await sign(claims({ tenant: "rival" }));
    const studio = await sign(claims());
    for (const route of protectedRoutes) {
      const path = pathOf(route.path);
      const own = await call(route.method, path, studio);
      // ComfyUI's routes get no ComfyUI request here (an empty body, no file name, no upgrade): they must
      // pass authentication and authorization, and answer the request itself, not the caller.
      if (route.path.startsWith("/comfyui/")) expect([401, 403], `own token on ${route.method} ${route.path}: ${own}`).not.toContain(own);
      // The token's subject is a submitter: an admin's route must refuse it with 403, after authenticating it.
      else if (isAction(route.action) && ACTIONS[route.action].role === "admin") expect(own, `own token on ${route.method} ${route.path}`).toBe(403);
      // A cluster's route on a single agent: the route itself answers that it does not apply (404 not-elastic), after authorizing the caller.
      else if (route.path === "/v1/pools/:pool/demand") expect(own, `own token on ${route.method} ${route.path}`).toBe(404);
      else expect(own, `own token on ${route.method} ${route.path}`).toBeLessThan(300);
      if (route.path.includes(":runId")) expect(await call(route.method, path, rival), `rival token on ${route.method} ${route.path}`).toBe(404);
    }
    // A tenant's valid token opens no worker's route.
    for (const route of ROUTES.filter((r) => r.action === WORKER)) expect(await call(route.method, pathOf(route.path), studio), `tenant token on ${route.path}`).toBe(401);
    // Cancelling: another tenant's run is 404 and stays as it was.
    expect(await call("POST", `/v1/runs/${runId}/cancel`, rival)).toBe(404);
  });
});
