/**
 * Kubernetes resource quantities ("24Gi", "512Mi", "1.5G", "1e9") converted to MiB, the unit the
 * scheduler counts VRAM and sizes in.
 */
import { ValidationError } from "../config/errors.ts";

const MIB = 1024 * 1024;

/** Bytes per unit of each suffix Kubernetes accepts for byte quantities. */
const SUFFIX_BYTES: Readonly<Record<string, number>> = {
  "": 1,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  Pi: 1024 ** 5,
  Ei: 1024 ** 6,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const QUANTITY = /^(\+?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E))?$/;

const HOW_TO_FIX =
  "write a Kubernetes quantity such as '24Gi', '512Mi' or '80G' (binary suffixes Ki, Mi, Gi, Ti, Pi, Ei; decimal k, M, G, T, P, E; no suffix means bytes)";

export type QuantityResult = { readonly ok: true; readonly mib: number } | { readonly ok: false; readonly message: string };

/** Like {@link parseQuantityMiB} but returns the problem instead of throwing (for schema refinements). */
export function tryParseQuantityMiB(quantity: string): QuantityResult {
  const text = quantity.trim();
  if (text.length === 0) return { ok: false, message: `is empty: ${HOW_TO_FIX}` };
  if (text.length > 64) return { ok: false, message: `is too long to be a quantity: ${HOW_TO_FIX}` };
  if (text.startsWith("-")) return { ok: false, message: `'${quantity}' is negative: sizes must be zero or more` };
  const match = QUANTITY.exec(text);
  if (!match) {
    const hint = /^\d+(\.\d+)?\s*(gb|mb|kb|tb|gib|mib)$/i.test(text) ? ` (did you mean '${suggestSuffix(text)}'?)` : "";
    return { ok: false, message: `'${quantity}' is not a quantity${hint}: ${HOW_TO_FIX}` };
  }
  const [, number, exponent, suffix] = match;
  const bytes = Number(number) * (exponent ? 10 ** Number(exponent.slice(1)) : SUFFIX_BYTES[suffix ?? ""]!);
  if (!Number.isFinite(bytes)) return { ok: false, message: `'${quantity}' is too large` };
  // Round up: a VRAM request that undershoots by a fraction of a MiB still must not overcommit.
  return { ok: true, mib: Math.ceil(bytes / MIB) };
}

/**
 * Converts a Kubernetes quantity to MiB, rounding up. Throws a ValidationError naming `field` when the
 * text is not a quantity.
 */
export function parseQuantityMiB(quantity: string, field = "quantity"): number {
  const result = tryParseQuantityMiB(quantity);
  if (!result.ok) throw new ValidationError(`quantity '${quantity}'`, [{ field, message: result.message }]);
  return result.mib;
}

function suggestSuffix(text: string): string {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt])/i.exec(text)!;
  return `${match[1]}${match[2]!.toUpperCase() === "K" ? "K" : match[2]!.toUpperCase()}i`;
}
