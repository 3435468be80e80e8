import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "../../runtime/config/errors.ts";
import {
  StaticTokenVerifier,
  TOKEN_PATTERN,
  createAuthenticator,
  defaultSubject,
  generateToken,
  identityFromConfig,
  parseTokenFile,
  sha256,
  type ReloadEvent,
} from "../../runtime/security/identity/index.ts";

const TENANTS = ["studio-a", "studio-b"];

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gf-tokens-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("generateToken", () => {
  it("makes a prefixed 256-bit token and the hash line that accepts it", () => {
    const a = generateToken("alice");
    expect(a.token).toMatch(TOKEN_PATTERN);
    expect(Buffer.from(a.token.slice(3), "base64url")).toHaveLength(32);
    expect(a.hash).toBe(`sha256:${sha256(a.token).toString("hex")}`);
    expect(a.line).toBe(`${a.hash} alice`);
    expect(a.line).not.toContain(a.token);
    expect(generateToken().token).not.toBe(a.token);
    expect(generateToken().line).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("refuses a subject that the file format cannot hold", () => {
    expect(() => generateToken("two words")).toThrow(/subject 'two words' is not a valid name/);
    expect(() => generateToken("group:ops")).toThrow(ValidationError);
  });
});

describe("parseTokenFile", () => {
  it("reads hashes with and without subjects, skipping comments, blanks and CRLF", () => {
    const a = generateToken("alice");
    const b = generateToken();
    const entries = parseTokenFile(`# studio-a\r\n\r\n${a.line}\r\n  ${b.line}  \n`, "studio-a");
    expect(entries.map((e) => e.subject)).toEqual(["alice", defaultSubject(sha256(b.token))]);
    expect(entries.map((e) => e.line)).toEqual([3, 4]);
    expect(entries[0]!.hash.equals(sha256(a.token))).toBe(true);
  });

  it("names every bad line with a fix", () => {
    const good = generateToken("alice");
    const text = [good.line, good.token, "sha256:abc", `${good.hash} bob extra`, `${generateToken().hash} b@d!`, good.line].join("\n");
    let error: ValidationError | undefined;
    try {
      parseTokenFile(text, "studio-a");
    } catch (err) {
      error = err as ValidationError;
    }
    expect(error).toBeInstanceOf(ValidationError);
    const byField = Object.fromEntries(error!.issues.map((i) => [i.field, i.message]));
    expect(byField["studio-a:2"]).toMatch(/looks like a token itself: store only its hash/);
    expect(byField["studio-a:3"]).toMatch(/64 lowercase hex digits/);
    expect(byField["studio-a:4"]).toMatch(/too many fields/);
    expect(byField["studio-a:5"]).toMatch(/subject 'b@d!'/);
    expect(byField["studio-a:6"]).toMatch(/already on line 1/);
    expect(error!.message).not.toContain(good.token);
  });
});

describe("StaticTokenVerifier", () => {
  it("verifies each tenant's tokens and names the subject; refuses unknown and malformed ones", () => {
    const alice = generateToken("alice");
    const ci = generateToken();
    const bob = generateToken("bob");
    writeFileSync(join(dir, "studio-a"), `${alice.line}\n${ci.line}\n`);
    writeFileSync(join(dir, "studio-b"), `${bob.line}\n`);
    const verifier = StaticTokenVerifier.load(dir, TENANTS);
    expect(verifier.size).toBe(3);
    expect(verifier.verify(alice.token)).toEqual({ ok: true, identity: { tenant: "studio-a", subject: "alice", groups: [], method: "token" } });
    expect(verifier.verify(bob.token)).toMatchObject({ ok: true, identity: { tenant: "studio-b", subject: "bob" } });
    expect(verifier.verify(ci.token)).toMatchObject({ ok: true, identity: { tenant: "studio-a", subject: defaultSubject(sha256(ci.token)) } });
    expect(verifier.verify(generateToken().token)).toMatchObject({ ok: false, reason: "unknown-token", status: 401 });
    expect(verifier.verify(alice.token.slice(0, -1))).toMatchObject({ ok: false, reason: "malformed" });
    expect(verifier.verify(alice.hash)).toMatchObject({ ok: false, reason: "malformed" });
    // One flipped character is another token.
    const flipped = alice.token.slice(0, -1) + (alice.token.endsWith("A") ? "B" : "A");
    expect(verifier.verify(flipped)).toMatchObject({ ok: false, reason: "unknown-token" });
  });

  it("refuses a file named after no tenant, and a hash shared by two tenants", () => {
    const t = generateToken();
    writeFileSync(join(dir, "studio-c"), `${generateToken().line}\n`);
    writeFileSync(join(dir, "studio-a"), `${t.line}\n`);
    writeFileSync(join(dir, "studio-b"), `${t.line}\n`);
    expect(() => StaticTokenVerifier.load(dir, TENANTS)).toThrow(/studio-b:1: the same token hash is also in tenant 'studio-a'[\s\S]*studio-c: token file names no tenant/);
  });

  it("names the config field when the mount is missing", () => {
    expect(() => StaticTokenVerifier.load(join(dir, "absent"), TENANTS)).toThrow(/security\.auth\.tokens\.mountPath: cannot read .*ENOENT/);
  });

  it("reads a Kubernetes Secret mount (links into ..data) and follows its atomic swap", async () => {
    const first = generateToken("alice");
    const second = generateToken("alice");
    const v1 = join(dir, "..v1");
    mkdirSync(v1);
    writeFileSync(join(v1, "studio-a"), `${first.line}\n`);
    symlinkSync("..v1", join(dir, "..data"));
    symlinkSync(join("..data", "studio-a"), join(dir, "studio-a"));
    const verifier = StaticTokenVerifier.load(dir, TENANTS);
    expect(verifier.verify(first.token).ok).toBe(true);

    const events: ReloadEvent[] = [];
    const stop = verifier.watch((e) => events.push(e), { debounceMs: 10 });
    try {
      // What the kubelet does: write a new folder, point a temporary link at it, rename over ..data.
      const v2 = join(dir, "..v2");
      mkdirSync(v2);
      writeFileSync(join(v2, "studio-a"), `${second.line}\n`);
      symlinkSync("..v2", join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
      await vi.waitFor(() => expect(events).toContainEqual({ ok: true, changed: true, tokens: 1 }), { timeout: 5_000 });
      expect(verifier.verify(second.token).ok).toBe(true);
      expect(verifier.verify(first.token)).toMatchObject({ ok: false, reason: "unknown-token" });
    } finally {
      stop();
    }
  });

  it("keeps the previous tokens when a reload finds a broken file, and reports it", async () => {
    const alice = generateToken("alice");
    writeFileSync(join(dir, "studio-a"), `${alice.line}\n`);
    const verifier = StaticTokenVerifier.load(dir, TENANTS);
    const events: ReloadEvent[] = [];
    const stop = verifier.watch((e) => events.push(e), { debounceMs: 10 });
    try {
      appendFileSync(join(dir, "studio-a"), "sha256:not-hex\n");
      await vi.waitFor(() => expect(events.some((e) => !e.ok)).toBe(true), { timeout: 5_000 });
      const failed = events.find((e) => !e.ok) as { ok: false; error: Error };
      expect(failed.error.message).toMatch(/studio-a:2: not a token hash/);
      expect(verifier.verify(alice.token).ok).toBe(true);
    } finally {
      stop();
    }
    // A touch without a change is not reported as one.
    expect(verifier.reload()).toMatchObject({ ok: false });
    writeFileSync(join(dir, "studio-a"), `${alice.line}\n`);
    expect(verifier.reload()).toEqual({ ok: true, changed: false, tokens: 1 });
  });
});

describe("createAuthenticator with static tokens", () => {
  it("reads the bearer scheme and routes gf_ tokens to the token files", async () => {
    const alice = generateToken("alice");
    writeFileSync(join(dir, "studio-a"), `${alice.line}\n`);
    const auth = createAuthenticator({ tokens: StaticTokenVerifier.load(dir, TENANTS) });
    expect(await auth.authenticate(`Bearer ${alice.token}`)).toMatchObject({ ok: true, identity: { tenant: "studio-a", subject: "alice" } });
    expect(await auth.authenticate(`bearer  ${alice.token}`)).toMatchObject({ ok: true });
    expect(await auth.authenticate(undefined)).toMatchObject({ ok: false, reason: "missing", status: 401 });
    expect(await auth.authenticate("  ")).toMatchObject({ ok: false, reason: "missing" });
    expect(await auth.authenticate(`Basic ${alice.token}`)).toMatchObject({ ok: false, reason: "malformed" });
    expect(await auth.authenticate(`Bearer ${alice.token} extra`)).toMatchObject({ ok: false, reason: "malformed" });
    expect(await auth.authenticate(`Bearer gf_short`)).toMatchObject({ ok: false, reason: "malformed" });
    expect(await auth.authenticate(`Bearer ${"x".repeat(20_000)}`)).toMatchObject({ ok: false, reason: "malformed" });
    // A JWT with no OIDC configured is refused, not passed on.
    expect(await auth.authenticate("Bearer aaa.bbb.ccc")).toMatchObject({ ok: false, reason: "malformed" });
  });
});

describe("identityFromConfig", () => {
  const security = (mountPath: string, oidc?: Record<string, unknown>) =>
    ({
      auth: { required: true, tokens: { secretName: "gpufabric-tokens", mountPath }, ...(oidc ? { oidc } : {}) },
      encryption: { atRest: true, algorithm: "AES-256-GCM", keyring: { secretName: "keyring", mountPath: "/var/run/keyring" } },
      audit: { signingKey: { secretName: "audit-key", mountPath: "/var/run/audit-key" }, sink: { type: "volume", claimName: "audit", mountPath: "/audit" }, checkpointEvery: 1000, checkpointIntervalSeconds: 60 },
      tls: { enabled: false },
    }) as Parameters<typeof identityFromConfig>[0]["security"];
  const tenants = TENANTS.map((name) => ({ name, weight: 1, gpuQuota: null, vramQuotaMiB: null, roles: [], dataClassification: "internal" as const, isolation: "shared" as const }));

  it("reads the tokens mount and leaves OIDC out when it is not configured", async () => {
    const alice = generateToken("alice");
    writeFileSync(join(dir, "studio-b"), `${alice.line}\n`);
    const built = identityFromConfig({ tenants, security: security(dir) });
    expect(built.oidc).toBeUndefined();
    expect(built.tokens.size).toBe(1);
    expect(await built.authenticator.authenticate(`Bearer ${alice.token}`)).toMatchObject({ ok: true, identity: { tenant: "studio-b" } });
  });

  it("fails start-up naming the OIDC field at fault", () => {
    const oidc = { issuer: "https://id.example.com/", audience: "gpufabric", jwksUri: "http://id.example.com/jwks", algorithms: ["RS256"], maxTokenAgeSeconds: 3600, requiredClaims: [], tenantClaim: "tenant" };
    expect(() => identityFromConfig({ tenants, security: security(dir, oidc) })).toThrow(/security\.auth\.oidc\.jwksUri: must be an https:\/\/ URL/);
    expect(identityFromConfig({ tenants, security: security(dir, { ...oidc, jwksUri: "https://id.example.com/jwks" }) }).oidc).toBeDefined();
  });
});
