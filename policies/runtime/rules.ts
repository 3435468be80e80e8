/**
 * The run-time half of the packs: rules the agent checks when a run is submitted, written into the
 * platform config's `runtimeRules`. Ids are `<pack>/<rule>` so the audit log and the 403 name the pack.
 */
import type { DataClassification, RuntimeRule } from "../../runtime/config/schema.ts";
import type { PackId } from "../model.ts";

const REGULATED: DataClassification[] = ["pii", "phi"];

function fixedRules(pack: PackId): RuntimeRule[] {
  switch (pack) {
    case "gpu-baseline":
      return [
        {
          id: "gpu-baseline/regulated-gpu-isolation",
          description: "Workflows of pii or phi tenants run only on exclusive or MIG pools: time-slicing gives no memory isolation (GF-GPU-004).",
          tenantClassifications: REGULATED,
          require: { poolSharing: ["exclusive", "mig"] },
        },
      ];
    case "hipaa":
      return [
        {
          id: "hipaa/phi-isolated-gpu",
          description: "Workflows of phi tenants run only on exclusive or MIG pools (164.312(a)(1)).",
          tenantClassifications: ["phi"],
          require: { poolSharing: ["exclusive", "mig"] },
        },
        {
          id: "hipaa/phi-default-deny-segment",
          description: "Workflows of phi tenants run only in segments with default-deny ingress and egress (164.312(a)(1), 164.312(e)).",
          tenantClassifications: ["phi"],
          require: { segmentDefaultDeny: true },
        },
        {
          id: "hipaa/phi-encrypted-tier",
          description: "Workflows of phi tenants write only to encrypted tiers (164.312(a)(2)(iv)).",
          tenantClassifications: ["phi"],
          require: { tierEncrypted: true },
        },
      ];
    case "soc2":
      return [
        {
          id: "soc2/confidential-encrypted-tier",
          description: "Workflows of confidential, pii or phi tenants write only to encrypted tiers (CC6.1, CC6.7).",
          tenantClassifications: ["confidential", "pii", "phi"],
          require: { tierEncrypted: true },
        },
        {
          id: "soc2/confidential-default-deny-segment",
          description: "Workflows of confidential, pii or phi tenants run only in default-deny segments (CC6.6).",
          tenantClassifications: ["confidential", "pii", "phi"],
          require: { segmentDefaultDeny: true },
        },
      ];
    case "gdpr-residency":
      return [];
  }
}

/** Run-time rules of the given packs; residency becomes one rule per restricted classification. */
export function runtimeRulesFor(packIds: readonly PackId[], allowedRegions: Partial<Record<DataClassification, readonly string[]>> = {}): RuntimeRule[] {
  const rules = packIds.flatMap(fixedRules);
  if (packIds.includes("gdpr-residency")) {
    for (const [classification, regions] of Object.entries(allowedRegions) as [DataClassification, readonly string[]][]) {
      rules.push({
        id: `gdpr-residency/${classification}-regions`,
        description: `Workflows of ${classification} tenants run only in ${regions.join(", ")} (Art. 44).`,
        tenantClassifications: [classification],
        require: { allowedRegions: [...regions] },
      });
    }
  }
  return rules.sort((a, b) => a.id.localeCompare(b.id));
}

/** The allowed regions per classification that residency run-time rules carry (the inverse of runtimeRulesFor). */
export function allowedRegionsFromRuntimeRules(rules: readonly RuntimeRule[]): Partial<Record<DataClassification, string[]>> {
  const out: Partial<Record<DataClassification, string[]>> = {};
  for (const rule of rules) {
    const regions = rule.require.allowedRegions;
    if (!regions) continue;
    for (const c of rule.tenantClassifications) out[c] = [...new Set([...(out[c] ?? []), ...regions])];
  }
  return out;
}
