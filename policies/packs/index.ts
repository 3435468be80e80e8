import { PACK_IDS, type PackId, type Rule } from "../model.ts";
import { allRules } from "../rules/index.ts";
import { gdprResidency } from "./gdpr-residency.ts";
import { gpuBaseline } from "./gpu-baseline.ts";
import { hipaa } from "./hipaa.ts";
import type { Pack } from "./pack.ts";
import { soc2 } from "./soc2.ts";

export type { Pack } from "./pack.ts";

export const packs: Readonly<Record<PackId, Pack>> = {
  "gpu-baseline": gpuBaseline,
  hipaa,
  soc2,
  "gdpr-residency": gdprResidency,
};

export function isPackId(value: string): value is PackId {
  return (PACK_IDS as readonly string[]).includes(value);
}

/** The rules of the given packs (a rule in several packs appears once), in id order. */
export function rulesOf(packIds: readonly PackId[], rules: readonly Rule[] = allRules): Rule[] {
  const wanted = new Set(packIds);
  return rules.filter((r) => r.controls.some((c) => wanted.has(c.pack)));
}
