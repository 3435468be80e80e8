/**
 * Static API tokens and the hash file format the agent reads them from.
 *
 * A token is `gf_` followed by the base64url form of 32 random bytes (256 bits). The prefix lets
 * secret scanners and humans recognize a leaked token; the agent only ever stores its hash.
 *
 * Token file (one per tenant in the tokens Secret, the file named after the tenant):
 *
 *     # comments and blank lines are ignored
 *     sha256:<64 lowercase hex digits> alice
 *     sha256:<64 lowercase hex digits>
 *
 * Each line is the SHA-256 of one token, optionally followed by the subject name that roles refer to
 * (letters, digits and `._@+-`, at most 128 characters). A line without a subject gets the subject
 * `token-<first 12 hex digits of the hash>`. Two lines may share a subject: that is how a token is
 * rotated (add the new line, hand it out, then delete the old one).
 *
 * Why SHA-256 and not a slow KDF (bcrypt, scrypt, Argon2): slow KDFs exist to make guessing
 * low-entropy passwords expensive. A token holds 256 random bits, so an attacker who steals the
 * hash file still has to search 2^256 candidates: no speed-up of the hash makes that feasible, and a
 * fast hash keeps each request's verification in microseconds.
 */
import { createHash, randomBytes } from "node:crypto";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";

export const TOKEN_PREFIX = "gf_";
const TOKEN_RANDOM_BYTES = 32;
/** `gf_` + 43 base64url characters (32 bytes, unpadded). */
export const TOKEN_PATTERN = /^gf_[A-Za-z0-9_-]{43}$/;
export const TOKEN_HASH_PATTERN = /^sha256:[0-9a-f]{64}$/;
export const TOKEN_SUBJECT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

export interface TokenHashEntry {
  /** The 32 bytes of the token's SHA-256. */
  readonly hash: Buffer;
  readonly subject: string;
  /** 1-based line in its file, for messages. */
  readonly line: number;
}

export interface GeneratedToken {
  /** The secret to hand to the client once; never stored. */
  readonly token: string;
  /** `sha256:<hex>`. */
  readonly hash: string;
  /** The line to append to the tenant's token file. */
  readonly line: string;
}

/** A new random token and the line that lets the agent accept it. */
export function generateToken(subject?: string): GeneratedToken {
  if (subject !== undefined && !TOKEN_SUBJECT_PATTERN.test(subject)) {
    throw new ValidationError("token subject", [{ field: "subject", message: subjectMessage(subject) }]);
  }
  const token = TOKEN_PREFIX + randomBytes(TOKEN_RANDOM_BYTES).toString("base64url");
  const hash = `sha256:${sha256(token).toString("hex")}`;
  return { token, hash, line: subject === undefined ? hash : `${hash} ${subject}` };
}

export function isTokenShaped(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** The subject a line without one gets: stable, and it reveals nothing usable about the token. */
export function defaultSubject(hash: Buffer): string {
  return `token-${hash.toString("hex").slice(0, 12)}`;
}

/**
 * Parses one tenant's token file. Throws a ValidationError naming `source:line` for every bad line,
 * so an operator can fix the whole file in one pass.
 */
export function parseTokenFile(text: string, source: string): TokenHashEntry[] {
  const entries: TokenHashEntry[] = [];
  const issues: FieldIssue[] = [];
  const seen = new Map<string, number>();
  text.split("\n").forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    const field = `${source}:${lineNo}`;
    const parts = line.split(/[ \t]+/);
    const [hashText, subject, ...rest] = parts as [string, string | undefined, ...string[]];
    if (!TOKEN_HASH_PATTERN.test(hashText)) {
      const hint = TOKEN_PATTERN.test(hashText)
        ? "this looks like a token itself: store only its hash (gpufabric prints the line to use when it generates a token)"
        : "expected 'sha256:' followed by 64 lowercase hex digits, then optionally a subject name";
      issues.push({ field, message: `not a token hash: ${hint}` });
      return;
    }
    if (rest.length > 0) {
      issues.push({ field, message: "too many fields: a line is a hash and at most one subject name (no spaces in subjects)" });
      return;
    }
    if (subject !== undefined && !TOKEN_SUBJECT_PATTERN.test(subject)) {
      issues.push({ field, message: subjectMessage(subject) });
      return;
    }
    const previous = seen.get(hashText);
    if (previous !== undefined) {
      issues.push({ field, message: `the same hash is already on line ${previous}: delete one of the two lines` });
      return;
    }
    seen.set(hashText, lineNo);
    const hash = Buffer.from(hashText.slice("sha256:".length), "hex");
    entries.push({ hash, subject: subject ?? defaultSubject(hash), line: lineNo });
  });
  if (issues.length > 0) throw new ValidationError(`token file ${source}`, issues);
  return entries;
}

function subjectMessage(subject: string): string {
  return `subject '${subject}' is not a valid name: use 1 to 128 letters, digits and '._@+-', starting with a letter or digit`;
}
