import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, generateSecret, type CryptoKey, type JSONWebKeySet, type JWTPayload } from "jose";
import { ValidationError } from "../../runtime/config/errors.ts";
import { OidcVerifier, createAuthenticator, type OidcSettings } from "../../runtime/security/identity/index.ts";

const ISSUER = "https://id.example.com/";
const AUDIENCE = "gpufabric";
const TENANTS = ["studio-a", "studio-b"];
const SETTINGS: OidcSettings = {
  issuer: ISSUER,
  audience: AUDIENCE,
  algorithms: ["RS256", "ES256"],
  maxTokenAgeSeconds: 3600,
  requiredClaims: ["email"],
  tenantClaim: "gpufabric_tenant",
};

const now = () => Math.floor(Date.now() / 1000);

let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
let stranger: { privateKey: CryptoKey; publicKey: CryptoKey };
let jwks: JSONWebKeySet;
let verifier: OidcVerifier;

beforeAll(async () => {
  rsa = await generateKeyPair("RS256", { extractable: true });
  ec = await generateKeyPair("ES256", { extractable: true });
  stranger = await generateKeyPair("RS256", { extractable: true });
  jwks = {
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
      { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
    ],
  };
  verifier = new OidcVerifier({ settings: SETTINGS, tenants: TENANTS, keys: { kind: "jwks", jwks } });
});

function claims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "user-42",
    email: "ada@example.com",
    gpufabric_tenant: "studio-a",
    groups: ["artists"],
    iat: now() - 60,
    exp: now() + 600,
    ...overrides,
  };
}

function strip(payload: JWTPayload, ...names: string[]): JWTPayload {
  const copy = { ...payload };
  for (const n of names) delete copy[n];
  return copy;
}

async function sign(payload: JWTPayload, key: CryptoKey | Uint8Array = rsa.privateKey, header: { alg: string; kid?: string } = { alg: "RS256", kid: "rsa-1" }): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header).sign(key);
}

describe("OidcVerifier with inline keys", () => {
  it("accepts a valid RS256 token and builds the identity from its verified claims", async () => {
    expect(await verifier.verify(await sign(claims()))).toEqual({
      ok: true,
      identity: { tenant: "studio-a", subject: "user-42", groups: ["artists"], method: "oidc" },
    });
  });

  it("accepts a valid ES256 token; a token without groups has none", async () => {
    const token = await sign(strip(claims({ gpufabric_tenant: "studio-b" }), "groups"), ec.privateKey, { alg: "ES256", kid: "ec-1" });
    expect(await verifier.verify(token)).toEqual({ ok: true, identity: { tenant: "studio-b", subject: "user-42", groups: [], method: "oidc" } });
  });

  const refusals: Array<[string, () => Promise<string>, string]> = [
    ["no token", async () => "", "missing"],
    ["not a JWT", async () => "hello", "malformed"],
    ["two parts", async () => "eyJhbGciOiJSUzI1NiJ9.e30", "malformed"],
    ["a header that is not JSON", async () => `${Buffer.from("{nope").toString("base64url")}.e30.c2ln`, "malformed"],
    ["expired", async () => sign(claims({ iat: now() - 1200, exp: now() - 600 })), "expired"],
    ["not yet valid", async () => sign(claims({ nbf: now() + 600 })), "not-yet-valid"],
    ["issued in the future", async () => sign(claims({ iat: now() + 600, exp: now() + 1200 })), "not-yet-valid"],
    ["wrong issuer", async () => sign(claims({ iss: "https://evil.example.com/" })), "wrong-issuer"],
    ["wrong audience", async () => sign(claims({ aud: "someone-else" })), "wrong-audience"],
    ["too old (beyond maxTokenAgeSeconds) though unexpired", async () => sign(claims({ iat: now() - 7200, exp: now() + 600 })), "too-old"],
    ["a missing required claim", async () => sign(strip(claims(), "email")), "missing-claim"],
    ["no tenant claim", async () => sign(strip(claims(), "gpufabric_tenant")), "missing-claim"],
    ["no exp", async () => sign(strip(claims(), "exp")), "missing-claim"],
    ["no sub", async () => sign(strip(claims(), "sub")), "missing-claim"],
    ["alg none", async () => new UnsecuredJWT(claims()).encode(), "unsupported-algorithm"],
    ["alg none with a signature part", async () => `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.c2ln`, "unsupported-algorithm"],
    [
      "HS256 signed with the RSA public key as the secret (HS/RS confusion)",
      async () => sign(claims(), new TextEncoder().encode(await exportSPKI(rsa.publicKey)), { alg: "HS256", kid: "rsa-1" }),
      "unsupported-algorithm",
    ],
    ["RS384, validly signed but not allowed", async () => sign(claims(), (await generateKeyPair("RS384")).privateKey, { alg: "RS384", kid: "rsa-1" }), "unsupported-algorithm"],
    ["an unknown kid", async () => sign(claims(), stranger.privateKey, { alg: "RS256", kid: "rsa-9" }), "unknown-key"],
    ["a known kid signed by another key", async () => sign(claims(), stranger.privateKey), "bad-signature"],
    ["a tampered payload", async () => {
      const [h, , s] = (await sign(claims())).split(".");
      return `${h}.${Buffer.from(JSON.stringify(claims({ gpufabric_tenant: "studio-b" }))).toString("base64url")}.${s}`;
    }, "bad-signature"],
    ["a tenant claim naming an unknown tenant", async () => sign(claims({ gpufabric_tenant: "studio-z" })), "unknown-tenant"],
    ["a tenant claim that is not a string", async () => sign(claims({ gpufabric_tenant: ["studio-a"] })), "invalid-claim"],
    ["groups that are not strings", async () => sign(claims({ groups: "admins" })), "invalid-claim"],
  ];

  it.each(refusals)("refuses %s", async (_, make, reason) => {
    const result = await verifier.verify(await make());
    expect(result).toMatchObject({ ok: false, reason, status: 401 });
  });

  it("allows clock skew within the tolerance", async () => {
    const skewed = new OidcVerifier({ settings: SETTINGS, tenants: TENANTS, keys: { kind: "jwks", jwks }, clockToleranceSeconds: 120 });
    const token = await sign(claims({ iat: now() - 700, exp: now() - 60 }));
    expect((await skewed.verify(token)).ok).toBe(true);
    expect(await verifier.verify(token)).toMatchObject({ ok: false, reason: "expired" });
  });
});

describe("OidcVerifier with an HMAC secret", () => {
  it("accepts HS256 tokens signed with the secret and nothing else", async () => {
    const secret = new Uint8Array(32).map((_, i) => (i * 37 + 11) % 256);
    const hs = new OidcVerifier({ settings: { ...SETTINGS, algorithms: ["HS256"] }, tenants: TENANTS, keys: { kind: "secret", secret } });
    expect(await hs.verify(await sign(claims(), secret, { alg: "HS256" }))).toMatchObject({ ok: true, identity: { tenant: "studio-a" } });
    const other = (await generateSecret("HS256", { extractable: true })) as CryptoKey;
    expect(await hs.verify(await sign(claims(), other, { alg: "HS256" }))).toMatchObject({ ok: false, reason: "bad-signature" });
    expect(await hs.verify(await sign(claims()))).toMatchObject({ ok: false, reason: "unsupported-algorithm" });
  });
});

describe("OidcVerifier settings", () => {
  const build = (settings: Partial<OidcSettings>, keys?: ConstructorParameters<typeof OidcVerifier>[0]["keys"]) => () =>
    new OidcVerifier({ settings: { ...SETTINGS, ...settings }, tenants: TENANTS, ...(keys ? { keys } : {}) });

  it("refuses none, HS* with public keys, RS* with a secret and unknown algorithms, naming the field", () => {
    expect(build({ algorithms: ["RS256", "none"] }, { kind: "jwks", jwks })).toThrow(/security\.auth\.oidc\.algorithms\[1\]: 'none' means unsigned tokens/);
    expect(build({ algorithms: ["HS256"] }, { kind: "jwks", jwks })).toThrow(/algorithms\[0\]: HS256 is an HMAC algorithm .*HS\/RS confusion/);
    expect(build({ algorithms: ["RS256"] }, { kind: "secret", secret: new Uint8Array(32) })).toThrow(/RS256 needs public keys/);
    expect(build({ algorithms: ["RS257"] }, { kind: "jwks", jwks })).toThrow(/unknown JWS algorithm 'RS257'/);
    expect(build({ algorithms: ["HS256"] }, { kind: "secret", secret: new Uint8Array(16) })).toThrow(/at least 32 random bytes/);
  });

  it("refuses missing keys, plain-http JWKS URLs off loopback, and private or symmetric inline keys", async () => {
    expect(build({})).toThrow(/security\.auth\.oidc\.jwksUri: no verification keys/);
    expect(build({ jwksUri: "http://id.example.com/jwks" })).toThrow(/jwksUri: must be an https:\/\/ URL/);
    expect(build({ jwksUri: "https://id.example.com/jwks" })).not.toThrow();
    expect(build({ jwksUri: "http://127.0.0.1:1/jwks" })).not.toThrow();
    const privateJwk = await exportJWK(rsa.privateKey);
    expect(build({}, { kind: "jwks", jwks: { keys: [privateJwk] } })).toThrow(/keys\[0\]: holds a private key/);
    expect(build({}, { kind: "jwks", jwks: { keys: [{ kty: "oct", k: "c2VjcmV0" }] } })).toThrow(/symmetric \('oct'\) keys/);
    expect(build({}, { kind: "jwks", jwks: { keys: [] } })).toThrow(ValidationError);
  });
});

describe("OidcVerifier with a JWKS URL", () => {
  let server: Server;
  let uri: string;
  let fetches = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== "/.well-known/jwks.json") {
        res.writeHead(404).end();
        return;
      }
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("fetches the keys from the provider, caches them, and verifies through the authenticator", async () => {
    const remote = new OidcVerifier({ settings: { ...SETTINGS, jwksUri: uri }, tenants: TENANTS });
    const auth = createAuthenticator({ oidc: remote });
    expect(await auth.authenticate(`Bearer ${await sign(claims())}`)).toMatchObject({ ok: true, identity: { subject: "user-42", method: "oidc" } });
    expect(await auth.authenticate(`Bearer ${await sign(claims(), ec.privateKey, { alg: "ES256", kid: "ec-1" })}`)).toMatchObject({ ok: true });
    expect(fetches).toBe(1);
    expect(await auth.authenticate(`Bearer ${await sign(claims({ aud: "x" }))}`)).toMatchObject({ ok: false, reason: "wrong-audience" });
    expect(await auth.authenticate(`Bearer ${await new UnsecuredJWT(claims()).encode()}`)).toMatchObject({ ok: false, reason: "unsupported-algorithm" });
  });

  it("answers 503 (keys-unavailable) when the provider cannot be reached or serves no JWKS", async () => {
    const broken = new OidcVerifier({ settings: { ...SETTINGS, jwksUri: uri.replace("/.well-known/jwks.json", "/missing") }, tenants: TENANTS });
    expect(await broken.verify(await sign(claims()))).toMatchObject({ ok: false, reason: "keys-unavailable", status: 503 });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = new OidcVerifier({ settings: { ...SETTINGS, jwksUri: `http://127.0.0.1:${port}/jwks` }, tenants: TENANTS });
    expect(await unreachable.verify(await sign(claims()))).toMatchObject({ ok: false, reason: "keys-unavailable", status: 503 });
  });
});
