/** Which classifications an object or a platform config holds, for the residency rules. */
import type { DataClassification, PlatformConfig } from "../../runtime/config/schema.ts";
import { DataClassificationSchema } from "../../runtime/config/schema.ts";
import { labelsOf, LABEL } from "../kubernetes.ts";
import type { Resource, RuleContextView } from "../model.ts";

export function classificationOf(resource: Resource, context: RuleContextView): DataClassification {
  const parsed = DataClassificationSchema.safeParse(labelsOf(resource, context)[LABEL.classification]);
  return parsed.success ? parsed.data : context.defaultClassification;
}

/** Every classification the platform handles: its tenants', its tiers' and the declared default. */
export function classificationsOf(config: PlatformConfig, context: RuleContextView): DataClassification[] {
  return [...new Set<DataClassification>([context.defaultClassification, ...config.tenants.map((t) => t.dataClassification), ...config.tiers.map((t) => t.dataClassification)])];
}
