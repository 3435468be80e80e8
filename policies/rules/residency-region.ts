import { configPath } from "../context.ts";
import { kindOf, labelsOf, LABEL } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { classificationOf, classificationsOf } from "./residency-support.ts";
import { controls } from "./support.ts";

export const residencyRegion: Rule = {
  id: "GF-GEO-001",
  name: "residency-region",
  level: "error",
  title: "Data stays in the regions allowed for its classification",
  rationale:
    "Residency rules (GDPR Chapter V transfers, national health-data laws, customer contracts) bind where personal data is processed and stored; the platform's region label is what reviewers and admission controllers check.",
  remediation:
    "Set the FabricStack's `region` to one of the allowed regions (it labels every object `gpufabric.dev/region`), or deploy the regulated tenants on a platform in an allowed region.",
  controls: [controls.gdpr("Art.44"), controls.soc2("CC6.7")],
  kinds: ["namespace", "storage_class", "persistent_volume_claim", "config_map"],
  check(resource, context) {
    const allowed = context.residency.allowedRegions;
    if (Object.keys(allowed).length === 0) return notApplicable;
    const configs = kindOf(resource.type) === "config_map" ? context.platformConfigs().filter((s) => s.resource === resource && s.config) : [];
    if (configs.length > 0) {
      const outcomes: Outcome[] = [];
      for (const source of configs) {
        const region = source.config!.platform.region;
        for (const c of classificationsOf(source.config!, context)) {
          const regions = allowed[c];
          if (!regions) continue;
          if (region === null) outcomes.push(violation(configPath(source, "platform.region"), `the platform declares no region but holds ${c} data, allowed only in ${regions.join(", ")}`));
          else if (!regions.includes(region)) outcomes.push(violation(configPath(source, "platform.region"), `region '${region}' is not allowed for ${c} data (allowed: ${regions.join(", ")})`));
        }
      }
      return outcomes.length ? outcomes : compliant;
    }
    const classification = classificationOf(resource, context);
    const regions = allowed[classification];
    if (!regions) return notApplicable;
    const region = labelsOf(resource, context)[LABEL.region];
    const at = `metadata.labels["${LABEL.region}"]`;
    if (region === undefined) {
      return kindOf(resource.type) === "namespace" ? violation(at, `the namespace holds ${classification} data and carries no region label`) : notApplicable;
    }
    return regions.includes(region) ? compliant : violation(at, `region '${region}' is not allowed for ${classification} data (allowed: ${regions.join(", ")})`);
  },
};
