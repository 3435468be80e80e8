import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkpointSignatureValid, loadPublicKey, loadSigningKey, keyId, signCheckpoint } from "../../runtime/security/audit/index.ts";
import { StaticTokenVerifier } from "../../runtime/security/identity/index.ts";
import { runCli } from "../support/cli.ts";


const gpufabric = runCli;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-tokens-cli-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("gpufabric tokens create", () => {
  it("prints a token once and appends only its hash to the tenant's file, which the agent's verifier accepts", () => {
    const tokens = join(dir, "tokens");
    const first = gpufabric("tokens", "create", "animation", "--dir", tokens, "--subject", "alice", "--json");
    expect(first.code).toBe(0);
    const created = JSON.parse(first.stdout) as { tenant: string; subject: string; token: string };
    expect(created).toMatchObject({ tenant: "animation", subject: "alice" });
    const second = gpufabric("tokens", "create", "animation", "--dir", tokens);
    expect(second.code).toBe(0);
    const plainToken = second.stdout.trim();

    const file = readFileSync(join(tokens, "animation"), "utf8");
    expect(file).not.toContain(created.token);
    expect(file).not.toContain(plainToken);
    expect(file.trim().split("\n")).toHaveLength(2);
    expect(statSync(join(tokens, "animation")).mode & 0o777).toBe(0o600);

    const verifier = StaticTokenVerifier.load(tokens, ["animation", "research"]);
    expect(verifier.verify(created.token)).toMatchObject({ ok: true, identity: { tenant: "animation", subject: "alice" } });
    expect(verifier.verify(plainToken)).toMatchObject({ ok: true, identity: { tenant: "animation", subject: expect.stringMatching(/^token-[0-9a-f]{12}$/) } });
  });

  it("refuses a bad tenant name, a bad subject and a file that is not a token file", () => {
    expect(gpufabric("tokens", "create", "../etc", "--dir", dir).stderr).toMatch(/tenant '\.\.\/etc' is not a tenant name/);
    const badSubject = gpufabric("tokens", "create", "studio", "--dir", dir, "--subject", "has space");
    expect(badSubject.code).toBe(2);
    expect(badSubject.stderr).toMatch(/--subject/);
    writeFileSync(join(dir, "studio"), "gf_notahash\n");
    const badFile = gpufabric("tokens", "create", "studio", "--dir", dir);
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toMatch(/is not a token file/);
    expect(readFileSync(join(dir, "studio"), "utf8")).toBe("gf_notahash\n");
  });
});

describe("gpufabric audit keygen", () => {
  it("writes a signing pair whose checkpoints verify, and never overwrites it", () => {
    const out = join(dir, "audit-signing");
    expect(gpufabric("audit", "keygen", "--out", out).code).toBe(0);
    expect(statSync(join(out, "private.pem")).mode & 0o777).toBe(0o400);
    const privateKey = loadSigningKey(join(out, "private.pem"));
    const publicKey = loadPublicKey(join(out, "public.pem"));
    const checkpoint = signCheckpoint({ seq: 1, hash: "a".repeat(64), time: "2026-01-01T00:00:00.000Z" }, privateKey, keyId(privateKey));
    expect(checkpointSignatureValid(checkpoint, publicKey)).toBe(true);
    const before = readFileSync(join(out, "private.pem"), "utf8");
    const again = gpufabric("audit", "keygen", "--out", out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect(readFileSync(join(out, "private.pem"), "utf8")).toBe(before);
  });
});
