import type { IConstruct } from "constructs";
import type { RuntimeRule } from "../runtime/config/schema.ts";

/** Marks a construct that contributes rules the agent enforces at run time (e.g. a CompliancePolicy). */
export const RUNTIME_RULE_SOURCE = Symbol.for("gpufabric.runtime-rule-source");

export interface RuntimeRuleSource extends IConstruct {
  readonly [RUNTIME_RULE_SOURCE]: true;
  /** Called at synth, after every construct is declared. */
  runtimeRules(): RuntimeRule[];
}

export function isRuntimeRuleSource(construct: IConstruct): construct is RuntimeRuleSource {
  return (construct as Partial<RuntimeRuleSource>)[RUNTIME_RULE_SOURCE] === true;
}

/** Every runtime rule declared anywhere under `scope`, deduplicated by id. */
export function collectRuntimeRules(scope: IConstruct): RuntimeRule[] {
  const byId = new Map<string, RuntimeRule>();
  for (const c of scope.node.findAll()) {
    if (!isRuntimeRuleSource(c)) continue;
    for (const rule of c.runtimeRules()) byId.set(rule.id, rule);
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}
