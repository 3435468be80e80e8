/**
 * Turns a request's `Authorization` header into a verified identity. Static tokens are recognized by
 * their `gf_` prefix; anything else shaped like a JWT goes to the OIDC verifier when one is configured.
 */
import { isTokenShaped, TOKEN_PREFIX } from "./token-format.ts";
import type { OidcVerifier } from "./oidc.ts";
import type { StaticTokenVerifier } from "./static-tokens.ts";
import { authFailure, type AuthResult } from "./types.ts";

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthResult>;
}

/** Longer headers are refused before any parsing: no legitimate bearer token comes close. */
const MAX_AUTHORIZATION_LENGTH = 16 * 1024;

export function createAuthenticator(verifiers: { readonly tokens?: StaticTokenVerifier; readonly oidc?: OidcVerifier }): Authenticator {
  return {
    async authenticate(authorization) {
      if (authorization === undefined || authorization.trim() === "") return authFailure("missing", "no Authorization header");
      if (authorization.length > MAX_AUTHORIZATION_LENGTH) return authFailure("malformed", `Authorization header longer than ${MAX_AUTHORIZATION_LENGTH} characters`);
      const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization);
      if (match === null) return authFailure("malformed", "expected 'Authorization: Bearer <token>'");
      const credential = match[1]!;
      if (credential.startsWith(TOKEN_PREFIX)) {
        if (verifiers.tokens === undefined) return authFailure("unknown-token", "static tokens are not configured");
        return isTokenShaped(credential) ? verifiers.tokens.verify(credential) : authFailure("malformed", "not a gpufabric token: expected 'gf_' and 43 base64url characters");
      }
      if (verifiers.oidc === undefined) return authFailure("malformed", "not a gpufabric token, and OIDC is not configured (security.auth.oidc)");
      return verifiers.oidc.verify(credential);
    },
  };
}
