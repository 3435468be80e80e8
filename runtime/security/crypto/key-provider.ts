/**
 * Where key-encryption keys (KEKs) live. Data keys never leave this process unwrapped; a provider only
 * wraps and unwraps them, so a file keyring, Vault transit or a cloud KMS can stand behind the same calls.
 * Versions are positive integers; a wrapped data key records the version that wrapped it.
 */
export interface KeyProvider {
  /** The version new data keys are wrapped under. */
  currentVersion(): Promise<number>;
  /** Every version this provider can still unwrap with, ascending. */
  versions(): Promise<readonly number[]>;
  /** Wraps a data key under `version`, binding `aad` (the object's context) to the wrapped key. */
  wrap(dataKey: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array>;
  /** Unwraps a data key; throws `KeyUnavailableError` for an unknown version and `DecryptionError` when anything does not authenticate. */
  unwrap(wrapped: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array>;
}

/** How many objects still use a key version: a fixed count, or a callback the store answers. */
export type UsageCount = number | ((version: number) => number | Promise<number>);

/** A provider whose versions this process manages (a file keyring; a KMS rotates on its own side). */
export interface RotatableKeyProvider extends KeyProvider {
  /** Adds a new version and makes it current; returns it. */
  rotate(): Promise<number>;
  /** Removes a version for good; refuses the current version and any version still in use. */
  retire(version: number, usage: UsageCount): Promise<void>;
}

/** A ciphertext, wrapped key or header that does not authenticate: tampered, truncated, or moved to another object. */
export class DecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecryptionError";
  }
}

/** The key version a ciphertext names is not in the keyring (retired, or a keyring from elsewhere). */
export class KeyUnavailableError extends Error {
  constructor(readonly version: number, known: readonly number[]) {
    super(`key version ${version} is not in the keyring (it holds ${known.length ? known.map((v) => `v${v}`).join(", ") : "no versions"}): restore that version or point at the keyring that wrapped this object`);
    this.name = "KeyUnavailableError";
  }
}

/** A keyring operation refused for a reason the operator can fix (still in use, bad permissions, missing files). */
export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}
