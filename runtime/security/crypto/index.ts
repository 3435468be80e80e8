export { objectContext, payloadAad, wrapAad, type ObjectContext } from "./context.ts";
export { DATA_KEY_BYTES, openValue, rewrapValue, sealValue } from "./envelope.ts";
export { FileKeyring, KEK_BYTES, type KeyringLayout } from "./file-keyring.ts";
export { fileKeyVersion, readDecryptedFile, readDecryptedFileToBuffer, rewrapFile, writeEncryptedFile } from "./files.ts";
export { keyVersionOf } from "./header.ts";
export { DecryptionError, KeyringError, KeyUnavailableError, type KeyProvider, type RotatableKeyProvider, type UsageCount } from "./key-provider.ts";
export { createDecryptStream, createEncryptStream, DEFAULT_CHUNK_BYTES, type EncryptStreamOptions } from "./stream.ts";
export { scanKeyVersionUsage, usageOf, type KeyVersionUsage } from "./usage.ts";
export { keyringPath } from "./paths.ts";
