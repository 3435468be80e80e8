import canonicalize from "canonicalize";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keyFileProblem } from "../crypto/private-file.ts";

/** What a checkpoint signs: the chain's head at `seq` and when it was taken. */
export interface CheckpointClaim {
  readonly seq: number;
  readonly hash: string;
  readonly time: string;
}

/** A claim with its Ed25519 signature (base64) and the signing key's id. */
export interface SignedCheckpoint extends CheckpointClaim {
  readonly keyId: string;
  readonly signature: string;
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SigningKeyError";
  }
}

/**
 * Loads the Ed25519 checkpoint signing key. The file is opened read-only and must grant no write
 * permission to anyone (nor read to group or others): the log writer can use the key but not replace it.
 * In a cluster it is a Secret mounted read-only (defaultMode 0440: root-owned, read through the pod's fsGroup).
 */
export function loadSigningKey(path: string): KeyObject {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch (err) {
    throw new SigningKeyError(`cannot open the audit signing key at ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): create one with 'gpufabric dev', or point at the mounted Secret`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new SigningKeyError(`${path} is not a regular file`);
    const mode = stat.mode & 0o777;
    if (mode & 0o222) throw new SigningKeyError(`the audit signing key ${path} is writable (mode ${octal(mode)}): the log writer must not be able to alter it; run 'chmod 400 ${path}'`);
    const problem = keyFileProblem(`the audit signing key ${path}`, { mode, uid: stat.uid });
    if (problem !== undefined) throw new SigningKeyError(problem.replaceAll("chmod 600", "chmod 400"));
    const key = createPrivateKey(readFileSync(fd));
    if (key.asymmetricKeyType !== "ed25519") throw new SigningKeyError(`${path} holds a ${key.asymmetricKeyType ?? "non-asymmetric"} key: checkpoints are signed with Ed25519`);
    return key;
  } catch (err) {
    if (err instanceof SigningKeyError) throw err;
    throw new SigningKeyError(`${path} is not a PEM Ed25519 private key (${(err as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** Loads the public key that verifies checkpoints (PEM SPKI, or the private key it belongs to). */
export function loadPublicKey(pathOrPem: string): KeyObject {
  const pem = pathOrPem.includes("-----BEGIN") ? pathOrPem : readFileSync(pathOrPem, "utf8");
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== "ed25519") throw new SigningKeyError(`the checkpoint public key is ${key.asymmetricKeyType ?? "not asymmetric"}, not Ed25519`);
  return key;
}

/**
 * Writes a fresh key pair for a development data directory: `private.pem` (0400) and `public.pem` (0444).
 * Refuses to overwrite an existing private key.
 */
export function generateSigningKeyPair(dir: string): { privateKeyPath: string; publicKeyPath: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privateKeyPath = join(dir, "private.pem");
  const publicKeyPath = join(dir, "public.pem");
  writeFileSync(privateKeyPath, privateKey.export({ type: "pkcs8", format: "pem" }), { flag: "wx", mode: 0o400 });
  writeFileSync(publicKeyPath, publicKey.export({ type: "spki", format: "pem" }), { mode: 0o444 });
  return { privateKeyPath, publicKeyPath };
}

/** A short, stable id of a public key: the first 16 hex digits of SHA-256 over its SPKI DER. */
export function keyId(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

export function claimBytes(claim: CheckpointClaim): Buffer {
  return Buffer.from(canonicalize({ seq: claim.seq, hash: claim.hash, time: claim.time })!, "utf8");
}

export function signCheckpoint(claim: CheckpointClaim, privateKey: KeyObject, id: string): SignedCheckpoint {
  return { seq: claim.seq, hash: claim.hash, time: claim.time, keyId: id, signature: sign(null, claimBytes(claim), privateKey).toString("base64") };
}

export function checkpointSignatureValid(checkpoint: SignedCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, claimBytes(checkpoint), publicKey, Buffer.from(checkpoint.signature, "base64"));
  } catch {
    return false;
  }
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}
