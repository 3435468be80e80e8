import { configPath } from "../context.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { checkConfigs, controls, REGULATED } from "./support.ts";

export const regulatedTierRetention: Rule = {
  id: "GF-STO-002",
  name: "regulated-tier-retention",
  level: "error",
  title: "Tiers that hold regulated data have a retention period",
  rationale:
    "Personal and health data may be kept no longer than needed; a tier without retention keeps every generated output of every run forever.",
  remediation: "Set `retentionDays` on the StorageTier (the agent deletes artifacts older than that).",
  controls: [controls.baseline("storage"), controls.gdpr("Art.5(1)(e)"), controls.hipaa("164.312(c)")],
  kinds: ["config_map"],
  check(resource, context) {
    return checkConfigs(resource, context, (config, source) => {
      const outcomes: Outcome[] = [];
      config.tiers.forEach((tier, i) => {
        if (REGULATED.has(tier.dataClassification) && tier.retentionDays === null) {
          outcomes.push(violation(configPath(source, `tiers[${i}].retentionDays`), `tier '${tier.name}' holds ${tier.dataClassification} data and keeps it forever`));
        }
      });
      return outcomes.length ? outcomes : compliant;
    });
  },
};
