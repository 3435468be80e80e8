/**
 * Sensitive database fields (the submitted workflow document, which holds ComfyUI prompts, and the run's
 * inputs) are sealed with envelope encryption before they reach the store. The context binds the tenant,
 * the run id and the field, so a sealed value copied into another run or tenant fails to open.
 */
import { openValue, sealValue, type KeyProvider, type ObjectContext } from "../../security/crypto/index.ts";
import { timeOrderedUuid } from "../store/ids.ts";
import type { NewRun } from "../store/types.ts";

/** How a sealed field is stored: the envelope, base64, under one key no submitted document uses at its top. */
export const SEALED_KEY = "$sealed";
export type SealedField = "document" | "inputs";

export function fieldContext(tenant: string, runId: string, field: SealedField): ObjectContext {
  return { tenant, run: runId, objectId: `run.${field}` };
}

/** The run with its id chosen here and its document and inputs sealed. */
export async function sealRunFields(keys: KeyProvider, run: NewRun): Promise<NewRun & { id: string }> {
  const id = run.id ?? timeOrderedUuid();
  const seal = async (field: SealedField, value: unknown) => ({
    [SEALED_KEY]: (await sealValue(keys, Buffer.from(JSON.stringify(value ?? null), "utf8"), fieldContext(run.tenant, id, field))).toString("base64"),
  });
  return {
    ...run,
    id,
    document: await seal("document", run.document),
    ...(run.inputs !== undefined && { inputs: await seal("inputs", run.inputs) }),
  };
}

export function isSealed(stored: unknown): stored is { [SEALED_KEY]: string } {
  return typeof stored === "object" && stored !== null && typeof (stored as Record<string, unknown>)[SEALED_KEY] === "string" && Object.keys(stored).length === 1;
}

/** The plaintext value of a stored field; a field stored before sealing existed is returned as it is. */
export async function openRunField(keys: KeyProvider, tenant: string, runId: string, field: SealedField, stored: unknown): Promise<unknown> {
  if (!isSealed(stored)) return stored;
  const plain = await openValue(keys, Buffer.from(stored[SEALED_KEY], "base64"), fieldContext(tenant, runId, field));
  return JSON.parse(plain.toString("utf8")) as unknown;
}
