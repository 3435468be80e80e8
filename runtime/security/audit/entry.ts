import canonicalize from "canonicalize";
import { createHash } from "node:crypto";
import { z } from "zod";
import { issuesFromZod, ValidationError } from "../../config/errors.ts";

/**
 * One audit entry. Serialized as RFC 8785 canonical JSON, one per line; `prev` is the hash of the entry
 * before it (GENESIS_HASH for the first), so the lines form a hash chain.
 */
export interface AuditEntry {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly tenant: string | null;
  readonly action: string;
  readonly object: string | null;
  readonly outcome: AuditOutcome;
  readonly source: string | null;
  readonly data: Readonly<Record<string, unknown>>;
  readonly prev: string;
}

export const OUTCOMES = ["success", "denied", "failure", "error"] as const;
export type AuditOutcome = (typeof OUTCOMES)[number];

/** What a caller records; the log assigns seq, time and prev. */
export interface AuditEvent {
  readonly actor: string;
  readonly tenant?: string | null;
  readonly action: string;
  readonly object?: string | null;
  readonly outcome: AuditOutcome;
  /** The client's address, or null for the agent's own actions. */
  readonly source?: string | null;
  readonly data?: Readonly<Record<string, unknown>>;
}

export const GENESIS_HASH = "0".repeat(64);
export const ENTRY_KEYS = ["action", "actor", "data", "object", "outcome", "prev", "seq", "source", "tenant", "time"] as const;
/** Entries are lines of a log; one larger than this is refused before it is written. */
export const MAX_ENTRY_BYTES = 64 * 1024;

const text = (max: number, what: string) => z.string({ error: `must be a string (${what})` }).min(1, `must not be empty (${what})`).max(max, `must be at most ${max} characters`);

const PLAIN_JSON = "must be plain JSON: finite numbers, strings, booleans, null, arrays and objects (no NaN, Infinity, undefined, functions, dates or bigints)";

const AuditEventSchema = z
  .object({
    actor: text(256, "who acted: a subject such as 'token:ci@studio' or 'agent'"),
    tenant: text(128, "the tenant acted for").nullable().optional(),
    action: text(128, "what was done, such as 'run.submit'"),
    object: text(1024, "what it was done to, such as 'run/run-1'").nullable().optional(),
    outcome: z.enum(OUTCOMES, { error: `must be one of ${OUTCOMES.join(", ")}` }),
    source: text(256, "the client address").nullable().optional(),
    /** Plain JSON only (no NaN, Infinity, undefined, functions, dates or bigints): the entry must serialize canonically. */
    data: z.record(z.string(), z.json()).optional(),
  })
  .strict();

/** Validates an event at the edge, naming each bad field. */
export function auditEvent(input: unknown): AuditEvent {
  // z.json() reports "Invalid input" deep in a union; say what data may hold instead.
  const parsed = AuditEventSchema.safeParse(input, { error: (issue) => (issue.path?.[0] === "data" && issue.path.length > 1 ? PLAIN_JSON : undefined) });
  if (!parsed.success) throw new ValidationError("audit event", issuesFromZod(parsed.error));
  return parsed.data;
}

/** The canonical line of an entry (without its newline); throws a ValidationError for data JSON cannot hold. */
export function serializeEntry(entry: AuditEntry): string {
  let line: string | undefined;
  try {
    line = canonicalize(entry);
  } catch (err) {
    throw new ValidationError("audit event", [{ field: "data", message: `must be plain JSON (${(err as Error).message})` }]);
  }
  if (line === undefined) throw new ValidationError("audit event", [{ field: "data", message: "must be plain JSON" }]);
  return line;
}

/** SHA-256 over the previous entry's hash (32 raw bytes) and the entry's canonical line; hex. */
export function chainHash(prevHex: string, line: Uint8Array): string {
  return createHash("sha256").update(Buffer.from(prevHex, "hex")).update(line).digest("hex");
}
