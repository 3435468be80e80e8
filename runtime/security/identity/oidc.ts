/**
 * Verifies OIDC/JWT bearer tokens with `jose`: signature against a JWKS (fetched from the provider's
 * `jwksUri`, or given inline) or a shared HMAC secret, then issuer, audience, expiry, not-before,
 * maximum token age and required claims. The tenant is read only from the configured claim of the
 * verified token.
 *
 * Algorithm confusion is closed twice: the allowlist may hold only asymmetric algorithms when keys come
 * from a JWKS and only HS* with a shared secret (checked when the verifier is built), and a token whose
 * header names an algorithm outside the allowlist (`none` included) is refused before any key is
 * looked up. Keys embedded in a token's header (`jwk`, `jku`, `x5u`) are never used.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import type { SecurityConfig } from "../../config/schema.ts";
import { authFailure, type AuthFailure, type AuthResult } from "./types.ts";

export type OidcSettings = NonNullable<SecurityConfig["auth"]["oidc"]>;

export const ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"] as const;
export const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
const ASYMMETRIC: ReadonlySet<string> = new Set(ASYMMETRIC_ALGORITHMS);
const HMAC: ReadonlySet<string> = new Set(HMAC_ALGORITHMS);
/** HS256 needs a key at least as long as its output to keep its strength (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;

/** Where verification keys come from. Without one, the config's `jwksUri` is used. */
export type KeySource =
  | { readonly kind: "jwks-uri"; readonly uri: string; readonly timeoutMs?: number; readonly cooldownMs?: number; readonly cacheMaxAgeMs?: number }
  | { readonly kind: "jwks"; readonly jwks: JSONWebKeySet }
  | { readonly kind: "secret"; readonly secret: Uint8Array };

export interface OidcVerifierOptions {
  readonly settings: OidcSettings;
  /** Tenant names of the platform config: a token naming another tenant is refused. */
  readonly tenants: readonly string[];
  readonly keys?: KeySource;
  /** Slack allowed on exp, nbf and iat between clocks; default 30 s. */
  readonly clockToleranceSeconds?: number;
  /** Claim holding the caller's groups (matched by `group:NAME` roles); default `groups`. */
  readonly groupsClaim?: string;
  /** Time to check against; default: now. */
  readonly currentDate?: () => Date;
}

const FIELD = "security.auth.oidc";

export class OidcVerifier {
  readonly #settings: OidcSettings;
  readonly #tenants: ReadonlySet<string>;
  readonly #allowed: ReadonlySet<string>;
  readonly #key: JWTVerifyGetKey | Uint8Array;
  readonly #remote: boolean;
  readonly #requiredClaims: string[];
  readonly #clockTolerance: number;
  readonly #groupsClaim: string;
  readonly #currentDate: (() => Date) | undefined;

  /** Throws a ValidationError naming the config field at fault. */
  constructor(options: OidcVerifierOptions) {
    const { settings } = options;
    const keys = options.keys ?? (settings.jwksUri !== undefined ? ({ kind: "jwks-uri", uri: settings.jwksUri } as const) : undefined);
    const issues = checkSettings(settings, keys, options);
    if (issues.length > 0 || keys === undefined) throw new ValidationError("OIDC settings", issues);
    this.#settings = settings;
    this.#tenants = new Set(options.tenants);
    this.#allowed = new Set(settings.algorithms);
    this.#remote = keys.kind === "jwks-uri";
    this.#key =
      keys.kind === "jwks-uri"
        ? createRemoteJWKSet(new URL(keys.uri), {
            timeoutDuration: keys.timeoutMs ?? 5_000,
            cooldownDuration: keys.cooldownMs ?? 30_000,
            cacheMaxAge: keys.cacheMaxAgeMs ?? 600_000,
          })
        : keys.kind === "jwks"
          ? createLocalJWKSet(keys.jwks)
          : keys.secret;
    // iat is needed for the maximum age, exp so no token lives forever, sub to name the caller.
    this.#requiredClaims = [...new Set(["sub", "iat", "exp", settings.tenantClaim, ...settings.requiredClaims])];
    this.#clockTolerance = options.clockToleranceSeconds ?? 30;
    this.#groupsClaim = options.groupsClaim ?? "groups";
    this.#currentDate = options.currentDate;
  }

  async verify(token: string): Promise<AuthResult> {
    if (token === "") return authFailure("missing", "empty bearer token");
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      return authFailure("malformed", "not a compact JWS: expected three base64url parts separated by '.'");
    }
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch (err) {
      return authFailure("malformed", `unreadable JWT header: ${(err as Error).message}`);
    }
    if (typeof alg !== "string" || !this.#allowed.has(alg)) {
      return authFailure("unsupported-algorithm", `alg '${String(alg)}' is not in security.auth.oidc.algorithms`);
    }
    let payload: JWTPayload;
    try {
      const options = {
        issuer: this.#settings.issuer,
        audience: this.#settings.audience,
        algorithms: [...this.#allowed],
        maxTokenAge: this.#settings.maxTokenAgeSeconds,
        requiredClaims: this.#requiredClaims,
        clockTolerance: this.#clockTolerance,
        ...(this.#currentDate ? { currentDate: this.#currentDate() } : {}),
      };
      const key = this.#key;
      payload = (key instanceof Uint8Array ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (err) {
      return this.#failureFor(err);
    }
    return this.#identityFrom(payload);
  }

  #identityFrom(payload: JWTPayload): AuthResult {
    const claim = this.#settings.tenantClaim;
    const tenant = payload[claim];
    if (typeof tenant !== "string") return authFailure("invalid-claim", `claim '${claim}' must be a string naming a tenant`);
    if (!this.#tenants.has(tenant)) return authFailure("unknown-tenant", `claim '${claim}' names '${tenant}', which is not a tenant of the platform config`);
    const subject = payload.sub;
    if (typeof subject !== "string" || subject === "") return authFailure("invalid-claim", "claim 'sub' must be a non-empty string");
    const groups = payload[this.#groupsClaim] ?? [];
    if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === "string")) {
      return authFailure("invalid-claim", `claim '${this.#groupsClaim}' must be an array of strings`);
    }
    return { ok: true, identity: { tenant, subject, groups: [...groups], method: "oidc" } };
  }

  #failureFor(err: unknown): AuthFailure {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof errors.JWTExpired) {
      return err.claim === "iat"
        ? authFailure("too-old", `issued more than ${this.#settings.maxTokenAgeSeconds} s ago (security.auth.oidc.maxTokenAgeSeconds)`)
        : authFailure("expired", message);
    }
    if (err instanceof errors.JWTClaimValidationFailed) {
      if (err.reason === "missing") return authFailure("missing-claim", message);
      if (err.claim === "iss") return authFailure("wrong-issuer", message);
      if (err.claim === "aud") return authFailure("wrong-audience", message);
      if (err.claim === "nbf" || (err.claim === "iat" && err.reason === "check_failed")) return authFailure("not-yet-valid", message);
      return authFailure("invalid-claim", message);
    }
    if (err instanceof errors.JWSSignatureVerificationFailed) return authFailure("bad-signature", message);
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return authFailure("unknown-key", message);
    if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return authFailure("unsupported-algorithm", message);
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return authFailure("keys-unavailable", message);
    if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return authFailure("malformed", message);
    // A remote key set fails with plain fetch errors when the provider cannot be reached, and with a
    // bare JOSEError when it answers something other than a JWKS.
    if (this.#remote && (!(err instanceof errors.JOSEError) || err.code === errors.JOSEError.code)) return authFailure("keys-unavailable", message);
    return authFailure("malformed", message);
  }
}

function checkSettings(settings: OidcSettings, keys: KeySource | undefined, options: OidcVerifierOptions): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (keys === undefined) {
    issues.push({ field: `${FIELD}.jwksUri`, message: "no verification keys: set jwksUri to the identity provider's JWKS URL, or give the keys inline" });
    return issues;
  }
  const symmetric = keys.kind === "secret";
  settings.algorithms.forEach((alg, i) => {
    const field = `${FIELD}.algorithms[${i}]`;
    if (alg.toLowerCase() === "none") issues.push({ field, message: "'none' means unsigned tokens and is never accepted: remove it" });
    else if (HMAC.has(alg) && !symmetric) {
      issues.push({ field, message: `${alg} is an HMAC algorithm and cannot be verified with a JWKS's public keys (HS/RS confusion): use RS256 or ES256` });
    } else if (ASYMMETRIC.has(alg) && symmetric) {
      issues.push({ field, message: `${alg} needs public keys: with a shared secret only ${HMAC_ALGORITHMS.join(", ")} apply` });
    } else if (!HMAC.has(alg) && !ASYMMETRIC.has(alg)) {
      issues.push({ field, message: `unknown JWS algorithm '${alg}': use one of ${[...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS].join(", ")}` });
    }
  });
  if (keys.kind === "jwks-uri") {
    let url: URL | undefined;
    try {
      url = new URL(keys.uri);
    } catch {
      issues.push({ field: `${FIELD}.jwksUri`, message: `'${keys.uri}' is not a URL` });
    }
    // Plain HTTP would let anyone on the path substitute the keys; only loopback is exempt (local providers).
    if (url && url.protocol !== "https:" && !(url.protocol === "http:" && isLoopback(url.hostname))) {
      issues.push({ field: `${FIELD}.jwksUri`, message: "must be an https:// URL (plain http is accepted only for a loopback address)" });
    }
  } else if (keys.kind === "jwks") {
    if (!Array.isArray(keys.jwks?.keys) || keys.jwks.keys.length === 0) {
      issues.push({ field: `${FIELD}.keys`, message: "inline JWKS must hold a non-empty 'keys' array" });
    } else {
      keys.jwks.keys.forEach((jwk, i) => {
        if (jwk.kty === "oct") issues.push({ field: `${FIELD}.keys[${i}]`, message: "symmetric ('oct') keys do not belong in a JWKS: publish only public keys" });
        if ("d" in jwk) issues.push({ field: `${FIELD}.keys[${i}]`, message: "holds a private key ('d'): give the agent only the public part" });
      });
    }
  } else if (keys.secret.byteLength < MIN_SECRET_BYTES) {
    issues.push({ field: `${FIELD}.secret`, message: `the shared secret must be at least ${MIN_SECRET_BYTES} random bytes` });
  }
  if (options.clockToleranceSeconds !== undefined && !(options.clockToleranceSeconds >= 0 && options.clockToleranceSeconds <= 300)) {
    issues.push({ field: "clockToleranceSeconds", message: "must be between 0 and 300 seconds" });
  }
  return issues;
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
