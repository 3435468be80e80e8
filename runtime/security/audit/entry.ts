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
  // Every request records events: the common, well-formed ones are checked by hand; anything else goes
  // through the schema, which decides and names the field at fault.
  return wellFormedEvent(input) ?? auditEventBySchema(input);
}

/** The schema's verdict alone (what the fast path must agree with). */
export function auditEventBySchema(input: unknown): AuditEvent {
  // z.json() reports "Invalid input" deep in a union; say what data may hold instead.
  const parsed = AuditEventSchema.safeParse(input, { error: (issue) => (issue.path?.[0] === "data" && issue.path.length > 1 ? PLAIN_JSON : undefined) });
  if (!parsed.success) throw new ValidationError("audit event", issuesFromZod(parsed.error));
  return parsed.data;
}

const EVENT_KEYS = new Set(["actor", "tenant", "action", "object", "outcome", "source", "data"]);
const MAX_FAST_DEPTH = 32;

const text_ = (v: unknown, max: number): v is string => typeof v === "string" && v.length >= 1 && v.length <= max;
const optionalText = (v: unknown, max: number) => v === undefined || v === null || text_(v, max);

/** The event when it is plainly valid (what AuditEventSchema accepts, checked by hand); undefined: let the schema decide. */
function wellFormedEvent(input: unknown): AuditEvent | undefined {
  if (!isPlainObject(input)) return undefined;
  for (const key in input) if (!EVENT_KEYS.has(key)) return undefined;
  const e = input as Record<string, unknown>;
  if (!text_(e.actor, 256) || !text_(e.action, 128) || !optionalText(e.tenant, 128) || !optionalText(e.object, 1024) || !optionalText(e.source, 256)) return undefined;
  if (typeof e.outcome !== "string" || !(OUTCOMES as readonly string[]).includes(e.outcome)) return undefined;
  if (e.data !== undefined && !(isPlainObject(e.data) && isPlainJson(e.data, 0))) return undefined;
  return {
    actor: e.actor,
    action: e.action,
    outcome: e.outcome as AuditOutcome,
    ...(e.tenant !== undefined && { tenant: e.tenant as string | null }),
    ...(e.object !== undefined && { object: e.object as string | null }),
    ...(e.source !== undefined && { source: e.source as string | null }),
    ...(e.data !== undefined && { data: e.data as Record<string, unknown> }),
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Strings, finite numbers, booleans, null, arrays and plain objects of them, not too deep to check here. */
function isPlainJson(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(v);
    case "object": {
      if (v === null) return true;
      if (depth >= MAX_FAST_DEPTH) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (!(i in v) || !isPlainJson(v[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(v)) return false;
      // An own "__proto__" key (JSON.parse makes one) is the schema's to judge: it drops such keys.
      for (const key in v) if (key === "__proto__" || !isPlainJson(v[key], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

/** The canonical line of an entry (without its newline); throws a ValidationError for data JSON cannot hold. */
export function serializeEntry(entry: AuditEntry): string {
  let line: string | undefined;
  try {
    line = canonicalLine(entry) ?? canonicalize(entry);
  } catch (err) {
    throw new ValidationError("audit event", [{ field: "data", message: `must be plain JSON (${(err as Error).message})` }]);
  }
  if (line === undefined) throw new ValidationError("audit event", [{ field: "data", message: "must be plain JSON" }]);
  return line;
}

const nullableString = (v: unknown) => v === null || typeof v === "string";

/**
 * RFC 8785 for the usual entry: its keys in sorted order (ENTRY_KEYS), strings as JSON.stringify writes
 * them (as the RFC specifies), `data` through the general canonicalizer; undefined for anything unusual.
 */
function canonicalLine(e: AuditEntry): string | undefined {
  if (!Number.isSafeInteger(e.seq) || typeof e.action !== "string" || typeof e.actor !== "string" || typeof e.outcome !== "string") return undefined;
  if (typeof e.prev !== "string" || typeof e.time !== "string" || !nullableString(e.object) || !nullableString(e.source) || !nullableString(e.tenant)) return undefined;
  if (Object.keys(e).length !== ENTRY_KEYS.length) return undefined;
  const data = canonicalize(e.data);
  if (data === undefined || typeof e.data !== "object" || e.data === null || Array.isArray(e.data)) return undefined;
  const q = JSON.stringify;
  return `{"action":${q(e.action)},"actor":${q(e.actor)},"data":${data},"object":${q(e.object)},"outcome":${q(e.outcome)},"prev":${q(e.prev)},"seq":${e.seq},"source":${q(e.source)},"tenant":${q(e.tenant)},"time":${q(e.time)}}`;
}

/** SHA-256 over the previous entry's hash (32 raw bytes) and the entry's canonical line; hex. */
export function chainHash(prevHex: string, line: Uint8Array): string {
  return createHash("sha256").update(Buffer.from(prevHex, "hex")).update(line).digest("hex");
}
