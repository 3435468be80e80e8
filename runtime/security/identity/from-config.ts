/**
 * Builds the agent's authenticator from the platform config: the tokens Secret mount and, when
 * configured, the OIDC provider. Start-up fails with the config field at fault.
 */
import type { PlatformConfig } from "../../config/schema.ts";
import { createAuthenticator, type Authenticator } from "./authenticate.ts";
import { OidcVerifier, type KeySource } from "./oidc.ts";
import { StaticTokenVerifier } from "./static-tokens.ts";

export interface ConfiguredIdentity {
  readonly authenticator: Authenticator;
  readonly tokens: StaticTokenVerifier;
  readonly oidc?: OidcVerifier;
}

export interface IdentityOverrides {
  /** Where the token files are, when not at the config's mount path (e.g. `gpufabric dev`'s data directory). */
  readonly tokensDir?: string;
  /** Verification keys other than the config's `jwksUri` (inline JWKS, HMAC secret). */
  readonly oidcKeys?: KeySource;
  readonly clockToleranceSeconds?: number;
}

export function identityFromConfig(config: Pick<PlatformConfig, "tenants" | "security">, overrides: IdentityOverrides = {}): ConfiguredIdentity {
  const tenants = config.tenants.map((t) => t.name);
  const tokens = StaticTokenVerifier.load(overrides.tokensDir ?? config.security.auth.tokens.mountPath, tenants);
  const settings = config.security.auth.oidc;
  const oidc =
    settings === undefined
      ? undefined
      : new OidcVerifier({
          settings,
          tenants,
          ...(overrides.oidcKeys ? { keys: overrides.oidcKeys } : {}),
          ...(overrides.clockToleranceSeconds !== undefined ? { clockToleranceSeconds: overrides.clockToleranceSeconds } : {}),
        });
  return { authenticator: createAuthenticator({ tokens, ...(oidc ? { oidc } : {}) }), tokens, ...(oidc ? { oidc } : {}) };
}
