import canonicalize from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { auditEvent, auditEventBySchema, serializeEntry, type AuditEntry } from "../../runtime/security/audit/entry.ts";

/** Events as the agent records them, and near misses of every kind (wrong types, lengths, keys, data). */
const text = (max: number) => fc.oneof(fc.string({ minLength: 0, maxLength: max + 2 }), fc.constant("x".repeat(max)), fc.constant("x".repeat(max + 1)), fc.constant("😀".repeat(max)));
const plainJson = fc.jsonValue({ maxDepth: 4 });
const oddJson = fc.oneof(
  plainJson,
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 1, new Date(0), 10n),
  fc.constant(Object.assign(Object.create(null) as object, { a: 1 })),
  fc.constant([1, , 3])
);
const event = fc.record(
  {
    actor: fc.oneof(text(256), fc.integer()),
    tenant: fc.oneof(text(128), fc.constant(null), fc.constant(undefined)),
    action: text(128),
    object: fc.oneof(text(1024), fc.constant(null)),
    outcome: fc.constantFrom("success", "denied", "failure", "error", "fine", ""),
    source: fc.oneof(text(256), fc.constant(null)),
    data: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), oddJson, { maxKeys: 4 }), fc.constant(null), fc.constant([1])),
    extra: fc.string(),
  },
  { requiredKeys: [] }
);

/** Events as the agent records them. */
const usual = fc.record(
  {
    actor: fc.string({ minLength: 1, maxLength: 40 }),
    tenant: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: null }),
    action: fc.constantFrom("runs:submit", "auth.failure", "schedule.place"),
    object: fc.option(fc.string({ minLength: 1, maxLength: 60 }), { nil: null }),
    outcome: fc.constantFrom("success", "denied", "failure", "error"),
    source: fc.option(fc.constant("127.0.0.1"), { nil: null }),
    data: fc.dictionary(fc.string({ maxLength: 8 }), plainJson, { maxKeys: 4 }),
  },
  { requiredKeys: ["actor", "action", "outcome"] }
);
const mixed = fc.oneof(usual, event);

function outcome(input: unknown, check = auditEvent): { ok: true; value: unknown } | { ok: false; issues: unknown } {
  try {
    return { ok: true, value: check(input) };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return { ok: false, issues: err.issues };
  }
}

describe("audit entries on the fast path", () => {
  it("agrees with the schema on data holding an own '__proto__' key (a case fast-check found)", () => {
    const input = JSON.parse('{"actor":" ","action":"runs:submit","outcome":"success","data":{"":{"__proto__":{}}}}');
    const got = outcome(input);
    const viaSchema = outcome(input, auditEventBySchema);
    expect(got.ok).toBe(viaSchema.ok);
    expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(viaSchema)));
  });

  it("accepts exactly the events the schema accepts, with the same fields", () => {
    fc.assert(
      fc.property(mixed, (input) => {
        const got = outcome(input);
        const viaSchema = outcome(input, auditEventBySchema);
        expect(got.ok).toBe(viaSchema.ok);
        if (got.ok && viaSchema.ok) expect(JSON.parse(JSON.stringify(got.value))).toEqual(JSON.parse(JSON.stringify(viaSchema.value)));
        else expect(got).toEqual(viaSchema);
      }),
      { numRuns: 2000 }
    );
    // The mix holds both verdicts in good measure.
    const verdicts = fc.sample(mixed, 2000).map((e) => outcome(e).ok);
    expect(verdicts.filter(Boolean).length).toBeGreaterThan(100);
    expect(verdicts.filter((ok) => !ok).length).toBeGreaterThan(100);
  });

  it("names the field at fault as the schema does", () => {
    expect(() => auditEvent({ actor: "", action: "x", outcome: "success" })).toThrow(ValidationError);
    expect(() => auditEvent({ actor: "a", action: "x", outcome: "success", data: { n: Number.NaN } })).toThrow(/plain JSON/);
    expect(() => auditEvent({ actor: "a", action: "x", outcome: "success", extra: 1 })).toThrow(ValidationError);
  });

  it("writes each entry exactly as RFC 8785 canonical JSON", () => {
    const entry = fc.record({
      seq: fc.nat(),
      time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      actor: fc.string({ minLength: 1 }),
      tenant: fc.option(fc.string({ minLength: 1 }), { nil: null }),
      action: fc.string({ minLength: 1 }),
      object: fc.option(fc.string({ unit: "binary", minLength: 1 }), { nil: null }),
      outcome: fc.constantFrom("success", "denied", "failure", "error" as const),
      source: fc.option(fc.string({ minLength: 1 }), { nil: null }),
      data: fc.dictionary(fc.string({ unit: "binary", maxLength: 6 }), plainJson, { maxKeys: 5 }),
      prev: fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 }),
    });
    fc.assert(
      fc.property(entry, (e) => {
        expect(serializeEntry(e as AuditEntry)).toBe(canonicalize(e));
      }),
      { numRuns: 2000 }
    );
  });
});
