import { describe, expect, it } from "vitest";
import type { Role, TenantConfig } from "../../runtime/config/schema.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import type { Identity } from "../../runtime/security/identity/types.ts";
import { ACTIONS, Authorizer, authorizerFromConfig, RoleBindings, RouteTable, type RouteDeclaration } from "../../runtime/security/authz/index.ts";

const TENANTS: Pick<TenantConfig, "name" | "roles">[] = [
  {
    name: "studio-a",
    roles: [
      { subject: "vera", role: "viewer" },
      { subject: "sam", role: "submitter" },
      { subject: "ada", role: "admin" },
      { subject: "group:artists", role: "submitter" },
      { subject: "group:leads", role: "admin" },
      // Listed twice: the higher role wins.
      { subject: "sam", role: "viewer" },
    ],
  },
  { name: "studio-b", roles: [{ subject: "ada", role: "viewer" }] },
];

const authorizer = new Authorizer(new RoleBindings(TENANTS));

const id = (subject: string, method: Identity["method"], groups: string[] = [], tenant = "studio-a"): Identity => ({ tenant, subject, groups, method });

/** Each caller with the role the spec says it holds in studio-a (null: none). */
const CALLERS: Array<{ name: string; identity: Identity | undefined; role: Role | null | "unauthenticated" }> = [
  { name: "no credential", identity: undefined, role: "unauthenticated" },
  { name: "a tenant removed from the config", identity: id("ada", "token", [], "studio-z"), role: "unauthenticated" },
  { name: "an unlisted token holder (default viewer)", identity: id("ci-bot", "token"), role: "viewer" },
  { name: "an unlisted OIDC user (default none)", identity: id("stranger", "oidc", ["interns"]), role: null },
  { name: "a listed viewer", identity: id("vera", "token"), role: "viewer" },
  { name: "a listed submitter", identity: id("sam", "oidc"), role: "submitter" },
  { name: "a submitter by group", identity: id("u-17", "oidc", ["artists"]), role: "submitter" },
  { name: "an admin by group (and submitter by another)", identity: id("u-18", "oidc", ["artists", "leads"]), role: "admin" },
  { name: "a listed admin", identity: id("ada", "token"), role: "admin" },
  { name: "an admin of studio-a named like a studio-b viewer", identity: id("ada", "oidc"), role: "admin" },
];

/** The least role of every action, as the API documentation promises it. */
const LEAST_ROLE: Record<string, Role> = {
  "runs:submit": "submitter",
  "runs:read": "viewer",
  "runs:cancel": "submitter",
  "artifacts:read": "viewer",
  "logs:read": "viewer",
  "uploads:write": "submitter",
  "history:write": "submitter",
  "workflows:read": "viewer",
  "gpus:read": "viewer",
  "queue:read": "viewer",
  "metrics:read": "viewer",
  "usage:read": "viewer",
  "admin:roles-read": "admin",
  "admin:audit-read": "admin",
  "admin:keyring-read": "admin",
  "admin:runs-purge": "admin",
};

const RANK: Record<Role, number> = { viewer: 1, submitter: 2, admin: 3 };

type Outcome = "allow" | 401 | 403 | 404;

function expected(role: Role | null | "unauthenticated", action: string, object: "none" | "own" | "other"): Outcome {
  if (role === "unauthenticated") return 401;
  if (object === "other") return 404;
  if (role === null) return 403;
  return RANK[role] >= RANK[LEAST_ROLE[action]!] ? "allow" : 403;
}

describe("authorize: the identity × action × object matrix", () => {
  it("covers every declared action", () => {
    expect(Object.keys(ACTIONS).sort()).toEqual(Object.keys(LEAST_ROLE).sort());
  });

  const cases = CALLERS.flatMap((caller) =>
    Object.keys(LEAST_ROLE).flatMap((action) =>
      (["none", "own", "other"] as const).map((object) => [caller.name, action, object, expected(caller.role, action, object), caller] as const),
    ),
  );

  it.each(cases)("%s → %s on %s object: %s", (_, action, object, outcome, caller) => {
    const subject = caller.identity?.subject ?? "anyone";
    const target = object === "none" ? undefined : { tenant: object === "own" ? "studio-a" : "studio-b", owner: subject };
    const decision = authorizer.authorize(caller.identity, action, target);
    if (outcome === "allow") expect(decision).toEqual({ allowed: true, role: caller.role });
    else expect(decision).toMatchObject({ allowed: false, status: outcome });
  });
});

describe("authorize: specific rules", () => {
  it("denies actions nobody declared, whatever the role", () => {
    for (const caller of CALLERS.filter((c) => c.role !== "unauthenticated")) {
      expect(authorizer.authorize(caller.identity, "runs:delete-everything")).toMatchObject({ allowed: false, status: 403, reason: "unknown-action" });
      expect(authorizer.authorize(caller.identity, "constructor")).toMatchObject({ allowed: false, status: 403, reason: "unknown-action" });
    }
  });

  it("answers 404 for another tenant's object even to that tenant's own admin name", () => {
    // 'ada' is admin in studio-a and viewer in studio-b: a studio-a credential reaches nothing in studio-b.
    const decision = authorizer.authorize(id("ada", "token"), "runs:read", { tenant: "studio-b" });
    expect(decision).toEqual({ allowed: false, status: 404, reason: "not-found", detail: "the object belongs to another tenant" });
    expect(authorizer.authorize(id("ada", "token", [], "studio-b"), "admin:audit-read")).toMatchObject({ allowed: false, status: 403, reason: "insufficient-role" });
  });

  it("lets a submitter cancel only its own runs; an admin cancels anyone's", () => {
    expect(authorizer.authorize(id("sam", "oidc"), "runs:cancel", { tenant: "studio-a", owner: "sam" })).toMatchObject({ allowed: true });
    expect(authorizer.authorize(id("sam", "oidc"), "runs:cancel", { tenant: "studio-a", owner: "u-17" })).toMatchObject({ allowed: false, status: 403, reason: "insufficient-role" });
    expect(authorizer.authorize(id("ada", "token"), "runs:cancel", { tenant: "studio-a", owner: "u-17" })).toMatchObject({ allowed: true, role: "admin" });
    // A run whose submitter was never recorded (stored before owners were): only an admin may cancel it.
    expect(authorizer.authorize(id("sam", "oidc"), "runs:cancel", { tenant: "studio-a", owner: null })).toMatchObject({ allowed: false, reason: "insufficient-role" });
    expect(authorizer.authorize(id("ada", "token"), "runs:cancel", { tenant: "studio-a", owner: null })).toMatchObject({ allowed: true });
    // Reading someone else's run needs no more than viewer.
    expect(authorizer.authorize(id("vera", "token"), "runs:read", { tenant: "studio-a", owner: "sam" })).toMatchObject({ allowed: true });
  });

  it("a token subject cannot claim a group binding", () => {
    expect(new RoleBindings(TENANTS).roleOf(id("group:leads", "token"))).toBe("viewer");
  });

  it("builds from the platform config's tenants", () => {
    const fromConfig = authorizerFromConfig({ tenants: TENANTS });
    expect(fromConfig.authorize(id("sam", "oidc"), "runs:submit")).toEqual({ allowed: true, role: "submitter" });
    expect(fromConfig.authorize(id("vera", "token"), "runs:submit")).toMatchObject({ allowed: false, status: 403 });
  });

  it("defaults can be changed by the composition root", () => {
    const strict = new RoleBindings(TENANTS, { token: null, oidc: null });
    expect(strict.roleOf(id("ci-bot", "token"))).toBeNull();
    expect(strict.roleOf(id("sam", "token"))).toBe("submitter");
  });

  it("refuses bindings that can match no one, naming the field", () => {
    let error: unknown;
    try {
      new RoleBindings([{ name: "studio-a", roles: [{ subject: "group:", role: "admin" }, { subject: " ada", role: "admin" }] }]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(["tenants[0].roles[0].subject", "tenants[0].roles[1].subject"]);
  });
});

describe("RouteTable", () => {
  const ROUTES: RouteDeclaration[] = [
    { method: "GET", path: "/healthz", action: "public" },
    { method: "POST", path: "/v1/runs", action: "runs:submit" },
    { method: "GET", path: "/v1/runs/:runId", action: "runs:read" },
    { method: "DELETE", path: "/v1/runs/:runId", action: "runs:cancel" },
    { method: "GET", path: "/v1/runs/:runId/artifacts/:name", action: "artifacts:read" },
  ];
  const table = new RouteTable(ROUTES);

  it("names the action of each route; HEAD follows GET; undeclared routes have none", () => {
    expect(table.actionFor("get", "/v1/runs/:runId")).toBe("runs:read");
    expect(table.actionFor("DELETE", "/v1/runs/:runId")).toBe("runs:cancel");
    expect(table.actionFor("HEAD", "/v1/runs/:runId/artifacts/:name")).toBe("artifacts:read");
    expect(table.actionFor("PUT", "/v1/runs/:runId")).toBeUndefined();
    expect(table.actionFor("GET", "/v1/runs/:runId/logs")).toBeUndefined();
  });

  it("passes when every registered route is declared, as fastify reports them", () => {
    const registered = [
      { method: "GET", url: "/healthz" },
      { method: "HEAD", url: "/healthz" },
      { method: "POST", url: "/v1/runs" },
      { method: ["GET", "DELETE"], url: "/v1/runs/:runId" },
      { method: ["GET", "HEAD"], url: "/v1/runs/:runId/artifacts/:name" },
    ];
    expect(() => table.assertCovers(registered)).not.toThrow();
    expect(table.coverage(registered)).toEqual({ undeclared: [], unregistered: [] });
  });

  it("fails start-up naming every route without a declared action", () => {
    const registered = [
      { method: "POST", url: "/v1/runs" },
      { method: "GET", url: "/v1/runs/:runId/logs" },
      { method: ["PUT", "GET"], url: "/v1/runs/:runId" },
    ];
    expect(table.coverage(registered)).toEqual({
      undeclared: ["GET /v1/runs/:runId/logs", "PUT /v1/runs/:runId"],
      unregistered: ["GET /healthz", "DELETE /v1/runs/:runId", "GET /v1/runs/:runId/artifacts/:name"],
    });
    expect(() => table.assertCovers(registered)).toThrow(/GET \/v1\/runs\/:runId\/logs: route has no declared action[\s\S]*PUT \/v1\/runs\/:runId/);
  });

  it("refuses bad declarations, naming each", () => {
    let error: unknown;
    try {
      new RouteTable([
        { method: "GET", path: "/v1/runs", action: "runs:read" },
        { method: "FETCH" as "GET", path: "v1/x", action: "runs:write" as "runs:read" },
        { method: "GET", path: "/v1/runs", action: "queue:read" },
      ]);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual(["routes[1].method", "routes[1].path", "routes[1].action", "routes[2]"]);
  });
});
