/** Runs rules over resources and gathers findings, acknowledged findings and per-rule evaluations. */
import type { DataClassification } from "../runtime/config/schema.ts";
import { ackCovers, targetOf, type TargetedAcknowledgement } from "./acknowledgements.ts";
import { RuleContext } from "./context.ts";
import type { Acknowledgement, Evaluation, Finding, Outcome, PackId, Report, Residency, Resource, Rule } from "./model.ts";
import { rulesOf } from "./packs/index.ts";

export interface CheckOptions {
  readonly packs: readonly PackId[];
  readonly residency?: Residency;
  /** Classification assumed for objects without a `gpufabric.dev/data-classification` label. @default "internal" */
  readonly defaultClassification?: DataClassification;
  /** Acknowledgements from outside the resources (an acknowledgement file). */
  readonly acknowledgements?: readonly TargetedAcknowledgement[];
  /** Rules to run instead of the packs' (tests). */
  readonly rules?: readonly Rule[];
}

export function runChecks(resources: readonly Resource[], options: CheckOptions): Report {
  const rules = options.rules ?? rulesOf(options.packs);
  const context = new RuleContext(resources, { residency: options.residency, defaultClassification: options.defaultClassification });
  const external = options.acknowledgements ?? [];
  const usedExternal = new Set<TargetedAcknowledgement>();
  const usedOwn = new Set<string>();
  const findings: Finding[] = [];
  const acknowledged: Finding[] = [];
  const evaluations: Evaluation[] = [];


  for (const rule of rules) {
    for (const kind of rule.kinds) {
      for (const resource of context.ofKind(kind)) {
        let result: Outcome | readonly Outcome[];
        try {
          result = rule.check(resource, context);
        } catch (err) {
          throw new Error(`rule ${rule.id} failed on ${resource.address}: ${(err as Error).message}`, { cause: err });
        }
        const outcomes: readonly Outcome[] = Array.isArray(result) ? result : [result as Outcome];
        const violations = outcomes.filter((o): o is Extract<Outcome, { status: "non-compliant" }> => o.status === "non-compliant");
        if (violations.length === 0) {
          if (outcomes.some((o) => o.status === "compliant")) evaluations.push({ ruleId: rule.id, address: resource.address, status: "compliant" });
          continue;
        }
        const ack = findAck(rule.id, resource, external, usedExternal, usedOwn);
        for (const v of violations) {
          const finding: Finding = {
            ruleId: rule.id,
            ruleName: rule.name,
            level: rule.level,
            title: rule.title,
            address: resource.address,
            resourceType: resource.type,
            ...(resource.constructPath ? { constructPath: resource.constructPath } : {}),
            ...(resource.file ? { file: resource.file } : {}),
            ...(resource.line ? { line: resource.line } : {}),
            attributePath: v.attributePath,
            message: v.message,
            remediation: rule.remediation,
            ...(ack ? { acknowledgement: ack } : {}),
          };
          (ack ? acknowledged : findings).push(finding);
        }
        evaluations.push({ ruleId: rule.id, address: resource.address, status: ack ? "acknowledged" : "non-compliant" });
      }
    }
  }

  const unusedAcknowledgements = [
    ...external.filter((a) => !usedExternal.has(a)).map((a) => ({ ruleId: a.ruleId, reason: a.reason, source: a.source, target: targetOf(a) })),
    ...unusedOwnAcks(resources, usedOwn),
  ].filter((a) => rules.some((r) => r.id === a.ruleId));

  return { packs: [...options.packs], rules, resourceCount: resources.length, findings, acknowledged, evaluations, unusedAcknowledgements };
}

function findAck(
  ruleId: string,
  resource: Resource,
  external: readonly TargetedAcknowledgement[],
  usedExternal: Set<TargetedAcknowledgement>,
  usedOwn: Set<string>,
): Acknowledgement | undefined {
  const own = resource.acknowledgements.find((a) => a.ruleId === ruleId);
  if (own) {
    usedOwn.add(ackKey(own));
    return own;
  }
  const ext = external.find((a) => a.ruleId === ruleId && ackCovers(a, resource));
  if (ext) {
    usedExternal.add(ext);
    return { ruleId: ext.ruleId, reason: ext.reason, source: ext.source };
  }
  return undefined;
}

/** An inherited acknowledgement is carried by many resources; it is the same one when rule, source and reason agree. */
function ackKey(ack: Acknowledgement): string {
  return `${ack.ruleId}\u0000${ack.source}\u0000${ack.reason}`;
}

function unusedOwnAcks(resources: readonly Resource[], used: ReadonlySet<string>): (Acknowledgement & { target: string })[] {
  const unused = new Map<string, Acknowledgement & { target: string }>();
  for (const r of resources) {
    for (const ack of r.acknowledgements) {
      const key = ackKey(ack);
      if (!used.has(key) && !unused.has(key)) unused.set(key, { ...ack, target: ack.source });
    }
  }
  return [...unused.values()];
}

/** Whether findings at `failOn` or above remain (acknowledged ones never count). */
export function hasFailures(report: Report, failOn: "error" | "warning"): boolean {
  return report.findings.some((f) => failOn === "warning" || f.level === "error");
}
