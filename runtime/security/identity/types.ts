/**
 * What authentication produces and how it fails. Routes answer 401 for every failure except
 * `keys-unavailable` (the identity provider's keys could not be fetched: 503, the client is not at fault).
 */

/** A verified caller. `tenant` comes only from a verified credential, never from a request body. */
export interface Identity {
  readonly tenant: string;
  /** Token subject name, or the OIDC `sub` claim. */
  readonly subject: string;
  /** OIDC `groups` claim; empty for static tokens. Matched by `group:NAME` role subjects. */
  readonly groups: readonly string[];
  readonly method: "token" | "oidc";
}

export const AUTH_FAILURE_REASONS = [
  "missing",
  "malformed",
  "unknown-token",
  "unsupported-algorithm",
  "unknown-key",
  "bad-signature",
  "expired",
  "not-yet-valid",
  "too-old",
  "wrong-issuer",
  "wrong-audience",
  "missing-claim",
  "invalid-claim",
  "unknown-tenant",
  "keys-unavailable",
] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

export interface AuthFailure {
  readonly ok: false;
  readonly reason: AuthFailureReason;
  /** For logs and the audit trail; the client gets only the reason code. */
  readonly detail: string;
  /** HTTP status the route answers. */
  readonly status: 401 | 503;
}

export type AuthResult = { readonly ok: true; readonly identity: Identity } | AuthFailure;

export function authFailure(reason: AuthFailureReason, detail: string): AuthFailure {
  return { ok: false, reason, detail, status: reason === "keys-unavailable" ? 503 : 401 };
}
