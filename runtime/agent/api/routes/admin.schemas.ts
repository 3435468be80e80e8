/** What GET /v1/audit and GET /v1/keyring accept and answer. */
import { z } from "zod";

export const AuditQuery = z
  .object({
    limit: z.coerce
      .number({ error: "must be a number of entries, e.g. ?limit=100" })
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .max(1000, "must be at most 1000")
      .default(100)
      .describe("entries per page (1 to 1000, default 100)"),
    before: z.coerce
      .number({ error: "must be an entry's seq, e.g. the nextBefore of the previous page" })
      .int("must be a whole number")
      .min(1, "must be at least 1")
      .optional()
      .describe("only entries older than this seq (the previous page's nextBefore)"),
  })
  .strict();

export const AuditResponse = z.object({
  entries: z.array(
    z.object({
      seq: z.number(),
      time: z.string(),
      actor: z.string(),
      tenant: z.string().nullable(),
      action: z.string(),
      object: z.string().nullable(),
      outcome: z.string(),
      source: z.string().nullable(),
      data: z.record(z.string(), z.unknown()),
      prev: z.string(),
    })
  ),
  nextBefore: z.number().nullable(),
  verify: z.object({ ok: z.boolean(), checked: z.number(), problem: z.string().nullable() }),
  lastCheckpoint: z.object({ seq: z.number(), time: z.string(), covers: z.number(), keyId: z.string().nullable() }).nullable(),
});

export const KeyringQuery = z.object({}).strict();

export const KeyringResponse = z.object({
  versions: z.array(
    z.object({
      version: z.number(),
      createdAt: z.string().nullable().describe("when the version's key file was written (null for a single-file keyring)"),
      retired: z.boolean().describe("always false: a retired version leaves the keyring"),
      active: z.boolean().describe("new data is sealed under it"),
    })
  ),
});
