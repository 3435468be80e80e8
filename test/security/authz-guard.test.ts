import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from "jose";
import type { Role } from "../../runtime/config/schema.ts";
import { OidcVerifier, StaticTokenVerifier, createAuthenticator, generateToken } from "../../runtime/security/identity/index.ts";
import { Authorizer, RoleBindings, RouteTable, createGuard, type Guard, type RouteDeclaration, type TenantObject } from "../../runtime/security/authz/index.ts";

const ISSUER = "https://id.example.com/";
const TENANTS = [
  { name: "studio-a", roles: [{ subject: "sam", role: "submitter" as const }, { subject: "group:leads", role: "admin" as const }] },
  { name: "studio-b", roles: [] },
];

/** The agent's routes as a route module would declare them, with the least role each needs. */
const ROUTES: Array<RouteDeclaration & { least: Role | "public"; object: boolean }> = [
  { method: "GET", path: "/healthz", action: "public", least: "public", object: false },
  { method: "POST", path: "/v1/runs", action: "runs:submit", least: "submitter", object: false },
  { method: "GET", path: "/v1/runs", action: "runs:read", least: "viewer", object: false },
  { method: "GET", path: "/v1/runs/:runId", action: "runs:read", least: "viewer", object: true },
  { method: "DELETE", path: "/v1/runs/:runId", action: "runs:cancel", least: "submitter", object: true },
  { method: "GET", path: "/v1/runs/:runId/artifacts/:name", action: "artifacts:read", least: "viewer", object: true },
  { method: "GET", path: "/v1/runs/:runId/stages/:stageId/logs", action: "logs:read", least: "viewer", object: true },
  { method: "GET", path: "/v1/gpus", action: "gpus:read", least: "viewer", object: false },
  { method: "GET", path: "/v1/queue", action: "queue:read", least: "viewer", object: false },
  { method: "GET", path: "/metrics", action: "metrics:read", least: "viewer", object: false },
  { method: "GET", path: "/v1/admin/audit", action: "admin:audit-read", least: "admin", object: false },
];

const RUNS: Record<string, TenantObject> = {
  "run-a": { tenant: "studio-a", owner: "sam" },
  "run-b": { tenant: "studio-b", owner: "bob" },
};

const RANK: Record<Role, number> = { viewer: 1, submitter: 2, admin: 3 };
const now = () => Math.floor(Date.now() / 1000);

let dir: string;
let guard: Guard;
/** Each credential with the tenant and role it proves, or the 401 it must get. */
const credentials: Array<{ name: string; header: string | undefined; proves: { tenant: string; role: Role } | 401 }> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gf-guard-"));
  const vera = generateToken("vera");
  const bob = generateToken("bob");
  writeFileSync(join(dir, "studio-a"), `${vera.line}\n`);
  writeFileSync(join(dir, "studio-b"), `${bob.line}\n`);

  const rsa = await generateKeyPair("RS256", { extractable: true });
  const oidc = new OidcVerifier({
    settings: { issuer: ISSUER, audience: "gpufabric", algorithms: ["RS256"], maxTokenAgeSeconds: 3600, requiredClaims: [], tenantClaim: "tenant" },
    tenants: TENANTS.map((t) => t.name),
    keys: { kind: "jwks", jwks: { keys: [{ ...(await exportJWK(rsa.publicKey)), kid: "k1" }] } },
  });
  const claims = (o: JWTPayload = {}): JWTPayload => ({ iss: ISSUER, aud: "gpufabric", sub: "sam", tenant: "studio-a", iat: now() - 10, exp: now() + 600, ...o });
  const jwt = (payload: JWTPayload, key: CryptoKey | Uint8Array = rsa.privateKey, alg = "RS256") => new SignJWT(payload).setProtectedHeader({ alg, kid: "k1" }).sign(key);

  guard = createGuard({
    routes: new RouteTable(ROUTES.map(({ method, path, action }) => ({ method, path, action }))),
    authenticator: createAuthenticator({ tokens: StaticTokenVerifier.load(dir, TENANTS.map((t) => t.name)), oidc }),
    authorizer: new Authorizer(new RoleBindings(TENANTS)),
  });

  credentials.push(
    { name: "none", header: undefined, proves: 401 },
    { name: "malformed", header: "Bearer not-a-token", proves: 401 },
    { name: "unknown static token", header: `Bearer ${generateToken().token}`, proves: 401 },
    { name: "expired JWT", header: `Bearer ${await jwt(claims({ iat: now() - 1200, exp: now() - 600 }))}`, proves: 401 },
    { name: "wrong issuer", header: `Bearer ${await jwt(claims({ iss: "https://evil.example.com/" }))}`, proves: 401 },
    { name: "wrong audience", header: `Bearer ${await jwt(claims({ aud: "other" }))}`, proves: 401 },
    { name: "alg none", header: `Bearer ${new UnsecuredJWT(claims()).encode()}`, proves: 401 },
    { name: "HS/RS confusion", header: `Bearer ${await jwt(claims(), new TextEncoder().encode(await exportSPKI(rsa.publicKey)), "HS256")}`, proves: 401 },
    { name: "studio-a viewer token", header: `Bearer ${vera.token}`, proves: { tenant: "studio-a", role: "viewer" } },
    { name: "studio-a submitter JWT", header: `Bearer ${await jwt(claims())}`, proves: { tenant: "studio-a", role: "submitter" } },
    { name: "studio-a admin JWT (group)", header: `Bearer ${await jwt(claims({ sub: "lee", groups: ["leads"] }))}`, proves: { tenant: "studio-a", role: "admin" } },
    { name: "studio-b viewer token", header: `Bearer ${bob.token}`, proves: { tenant: "studio-b", role: "viewer" } },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectedStatus(route: (typeof ROUTES)[number], proves: { tenant: string; role: Role } | 401, runId: string | undefined): number {
  if (route.least === "public") return 200;
  if (proves === 401) return 401;
  if (route.object && (runId === undefined || RUNS[runId]?.tenant !== proves.tenant)) return 404;
  return RANK[proves.role] >= RANK[route.least] ? 200 : 403;
}

describe("route × credential × object matrix", () => {
  it("answers 200, 401, 403 or 404 on every route as the policy says", async () => {
    let checked = 0;
    const seen = new Set<number>();
    for (const route of ROUTES) {
      for (const credential of credentials) {
        for (const runId of route.object ? ["run-a", "run-b", "run-missing"] : [undefined]) {
          const decision = await guard.check({
            method: route.method,
            route: route.path,
            authorization: credential.header,
            ...(route.object ? { loadObject: async () => RUNS[runId!] } : {}),
          });
          const status = decision.allowed ? 200 : decision.status;
          const want = expectedStatus(route, credential.proves, runId);
          expect({ route: `${route.method} ${route.path}`, credential: credential.name, runId, status }).toEqual({
            route: `${route.method} ${route.path}`,
            credential: credential.name,
            runId,
            status: want,
          });
          seen.add(status);
          checked++;
        }
      }
    }
    expect(checked).toBe(ROUTES.reduce((n, r) => n + (r.object ? 3 : 1), 0) * credentials.length);
    expect([...seen].sort()).toEqual([200, 401, 403, 404]);
  });

  it("never loads the object before the caller is authenticated", async () => {
    let loads = 0;
    const decision = await guard.check({ method: "GET", route: "/v1/runs/:runId", authorization: undefined, loadObject: async () => (loads++, RUNS["run-a"]) });
    expect(decision).toMatchObject({ allowed: false, status: 401, reason: "missing" });
    expect(loads).toBe(0);
  });

  it("refuses a route that declares no action, whatever the credential", async () => {
    const admin = credentials.find((c) => c.name === "studio-a admin JWT (group)")!;
    expect(await guard.check({ method: "PUT", route: "/v1/runs/:runId", authorization: admin.header })).toMatchObject({ allowed: false, status: 403, reason: "undeclared-route" });
  });

  it("hands the verified identity to the route, and to the audit log on a refusal", async () => {
    const sam = credentials.find((c) => c.name === "studio-a submitter JWT")!;
    expect(await guard.check({ method: "POST", route: "/v1/runs", authorization: sam.header })).toMatchObject({
      allowed: true,
      action: "runs:submit",
      identity: { tenant: "studio-a", subject: "sam", method: "oidc" },
    });
    expect(await guard.check({ method: "GET", route: "/v1/runs/:runId", authorization: sam.header, loadObject: async () => RUNS["run-b"] })).toMatchObject({
      allowed: false,
      status: 404,
      reason: "not-found",
      identity: { subject: "sam" },
    });
  });
});
