import { configPath } from "../context.ts";
import { asArray, get, kindOf, objects } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { classificationOf, classificationsOf } from "./residency-support.ts";
import { controls, path } from "./support.ts";

const ZONE_KEYS = new Set(["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"]);

export const residencyZone: Rule = {
  id: "GF-GEO-002",
  name: "residency-zone",
  level: "error",
  title: "Volumes and nodes stay in the zones allowed for their classification",
  rationale:
    "Some residency commitments name data centres (zones), not just regions: a volume provisioned in another zone is data stored there.",
  remediation:
    "Set the FabricStack's `zones` to allowed zones, and restrict StorageClasses with `allowed_topologies` on `topology.kubernetes.io/zone` to those zones.",
  controls: [controls.gdpr("Art.44")],
  kinds: ["storage_class", "config_map"],
  check(resource, context) {
    const allowed = context.residency.allowedZones;
    if (Object.keys(allowed).length === 0) return notApplicable;
    const outcomes: Outcome[] = [];
    if (kindOf(resource.type) === "config_map") {
      const configs = context.platformConfigs().filter((s) => s.resource === resource && s.config);
      if (configs.length === 0) return notApplicable;
      for (const source of configs) {
        for (const c of classificationsOf(source.config!, context)) {
          const zones = allowed[c];
          if (!zones) continue;
          if (source.config!.platform.zones.length === 0) outcomes.push(violation(configPath(source, "platform.zones"), `the platform declares no zones but holds ${c} data, allowed only in ${zones.join(", ")}`));
          source.config!.platform.zones.forEach((z, i) => {
            if (!zones.includes(z)) outcomes.push(violation(configPath(source, `platform.zones[${i}]`), `zone '${z}' is not allowed for ${c} data (allowed: ${zones.join(", ")})`));
          });
        }
      }
      return outcomes.length ? outcomes : compliant;
    }
    const classification = classificationOf(resource, context);
    const zones = allowed[classification];
    if (!zones) return notApplicable;
    const terms = objects(get(resource.attributes, ["allowed_topologies"]));
    const zoneExprs = terms.flatMap((t, i) => objects(t.match_label_expressions).map((e, j) => ({ e, i, j }))).filter(({ e }) => ZONE_KEYS.has(String(e.key)));
    if (zoneExprs.length === 0) {
      // Under WaitForFirstConsumer the volume is created in the zone of the node its first pod runs on,
      // so it stays where the platform's nodes are (checked on the platform config).
      return get(resource.attributes, ["volume_binding_mode"]) === "WaitForFirstConsumer"
        ? compliant
        : violation("allowed_topologies", `the storage class binds volumes immediately and may provision them in any zone, but holds ${classification} data`);
    }
    for (const { e, i, j } of zoneExprs) {
      asArray(e.values).forEach((z, k) => {
        if (!zones.includes(String(z))) outcomes.push(violation(path("allowed_topologies", i, "match_label_expressions", j, "values", k), `zone '${String(z)}' is not allowed for ${classification} data`));
      });
    }
    return outcomes.length ? outcomes : compliant;
  },
};
