export * from "./types.ts";
export * from "./token-format.ts";
export { StaticTokenVerifier, type ReloadEvent, type WatchOptions } from "./static-tokens.ts";
export { OidcVerifier, ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, type KeySource, type OidcSettings, type OidcVerifierOptions } from "./oidc.ts";
export { createAuthenticator, type Authenticator } from "./authenticate.ts";
export { identityFromConfig, type ConfiguredIdentity, type IdentityOverrides } from "./from-config.ts";
