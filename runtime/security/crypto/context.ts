import canonicalize from "canonicalize";
import { z } from "zod";
import { issuesFromZod, ValidationError } from "../../config/errors.ts";

/** What a ciphertext belongs to. Binding it as additional authenticated data makes a ciphertext moved elsewhere fail. */
export interface ObjectContext {
  readonly tenant: string;
  readonly run: string;
  readonly objectId: string;
}

const part = (what: string) =>
  z
    .string({ error: `must be a string naming the ${what}` })
    .min(1, `must name the ${what} (an empty string binds nothing)`)
    .max(512, "must be at most 512 characters");

const ObjectContextSchema = z.object({ tenant: part("tenant"), run: part("run"), objectId: part("object (artifact or database field)") }).strict();

/** Validates a context at the edge, naming each bad field. */
export function objectContext(input: unknown): ObjectContext {
  const parsed = ObjectContextSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError("encryption context", issuesFromZod(parsed.error));
  return parsed.data;
}

/**
 * AAD of the wrapped data key: RFC 8785 canonical JSON of `{ keyVersion, objectId, run, tenant }`. The key
 * version is bound here, on the wrap, so a rewrap can move a data key to a new version without touching the payload.
 */
export function wrapAad(context: ObjectContext, keyVersion: number): Buffer {
  return Buffer.from(canonicalize({ tenant: context.tenant, run: context.run, objectId: context.objectId, keyVersion })!, "utf8");
}

/** AAD of the payload: canonical `{ objectId, run, tenant }`; the payload's data key is itself bound to the version by its wrap. */
export function payloadAad(context: ObjectContext): Buffer {
  return Buffer.from(canonicalize({ tenant: context.tenant, run: context.run, objectId: context.objectId })!, "utf8");
}
