/**
 * CompliancePolicy runs compliance packs over the stack's synthesized Terraform at synth time (error
 * findings fail the synth) and contributes the packs' run-time rules to the platform config.
 * Compliance.acknowledge records an accepted finding with its reason; acknowledgements cover the
 * construct and everything under it and are listed in every report, never dropped.
 */
import { Annotations, Aspects, TerraformResource, TerraformStack, type IAspect } from "cdktf";
import { Construct, type IConstruct } from "constructs";
import { ValidationError, type FieldIssue } from "../runtime/config/errors.ts";
import { DataClassificationSchema, type DataClassification, type RuntimeRule } from "../runtime/config/schema.ts";
import {
  MIN_REASON_LENGTH,
  PACK_IDS,
  hasFailures,
  isPackId,
  resourcesFromTerraformJson,
  ruleById,
  runChecks,
  runtimeRulesFor,
  type Finding,
  type PackId,
  type Report,
  type TargetedAcknowledgement,
} from "../policies/index.ts";
import { RUNTIME_RULE_SOURCE, type RuntimeRuleSource } from "./runtime-rules.ts";

/** Regions or zones: one list for every classification at or above the policy's, or a list per classification. */
export type PlacesByClassification = readonly string[] | Readonly<Partial<Record<DataClassification, readonly string[]>>>;

export interface CompliancePolicyProps {
  /** Packs to run: `gpu-baseline`, `hipaa`, `soc2`, `gdpr-residency`. */
  readonly packs: readonly PackId[];
  /**
   * The most sensitive data the platform holds; objects without a `gpufabric.dev/data-classification`
   * label are judged as holding it.
   * @default "internal"
   */
  readonly dataClassification?: DataClassification;
  /**
   * Regions allowed per classification (checked by the `gdpr-residency` pack, enforced at run time).
   * A plain list applies to `dataClassification` and every more sensitive classification.
   * @default no residency limit
   */
  readonly allowedRegions?: PlacesByClassification;
  /**
   * Zones allowed per classification, like `allowedRegions`.
   * @default no zone limit
   */
  readonly allowedZones?: PlacesByClassification;
  /**
   * The lowest finding level that fails the synth; lower ones become warnings.
   * @default "error"
   */
  readonly failOn?: "error" | "warning";
}

const ORDER: readonly DataClassification[] = DataClassificationSchema.options;

function expandPlaces(field: string, value: PlacesByClassification | undefined, from: DataClassification, issues: FieldIssue[]): Partial<Record<DataClassification, string[]>> {
  if (value === undefined) return {};
  const out: Partial<Record<DataClassification, string[]>> = {};
  const checkList = (at: string, list: unknown) => {
    if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== "string" || p.trim() === "")) {
      issues.push({ field: at, message: "must be a non-empty list of region or zone names, e.g. [\"eu-west-1\"]" });
      return false;
    }
    return true;
  };
  if (Array.isArray(value)) {
    if (checkList(field, value)) for (const c of ORDER.slice(ORDER.indexOf(from))) out[c] = [...value];
    return out;
  }
  for (const [key, list] of Object.entries(value as Record<string, unknown>)) {
    const parsed = DataClassificationSchema.safeParse(key);
    if (!parsed.success) {
      issues.push({ field: `${field}.${key}`, message: `'${key}' is not a data classification: use one of ${ORDER.join(", ")}` });
      continue;
    }
    if (checkList(`${field}.${key}`, list)) out[parsed.data] = [...(list as string[])];
  }
  return out;
}

export class CompliancePolicy extends Construct implements RuntimeRuleSource {
  readonly [RUNTIME_RULE_SOURCE] = true as const;
  readonly packs: readonly PackId[];
  readonly dataClassification: DataClassification;
  readonly allowedRegions: Readonly<Partial<Record<DataClassification, readonly string[]>>>;
  readonly allowedZones: Readonly<Partial<Record<DataClassification, readonly string[]>>>;
  readonly failOn: "error" | "warning";
  private annotated = false;

  constructor(scope: Construct, id: string, props: CompliancePolicyProps) {
    super(scope, id);
    const issues: FieldIssue[] = [];
    if (!Array.isArray(props.packs) || props.packs.length === 0) {
      issues.push({ field: "packs", message: `give at least one pack: ${PACK_IDS.join(", ")}` });
    } else {
      props.packs.forEach((p, i) => {
        if (!isPackId(p)) issues.push({ field: `packs[${i}]`, message: `unknown pack '${String(p)}': use one of ${PACK_IDS.join(", ")}` });
      });
    }
    const classification = props.dataClassification ?? "internal";
    if (!DataClassificationSchema.safeParse(classification).success) {
      issues.push({ field: "dataClassification", message: `'${String(classification)}' is not a data classification: use one of ${ORDER.join(", ")}` });
    }
    if (props.failOn !== undefined && props.failOn !== "error" && props.failOn !== "warning") {
      issues.push({ field: "failOn", message: `'${String(props.failOn)}' must be 'error' or 'warning'` });
    }
    const from = ORDER.includes(classification) ? classification : "internal";
    this.allowedRegions = expandPlaces("allowedRegions", props.allowedRegions, from, issues);
    this.allowedZones = expandPlaces("allowedZones", props.allowedZones, from, issues);
    if ((props.allowedRegions !== undefined || props.allowedZones !== undefined) && Array.isArray(props.packs) && !props.packs.includes("gdpr-residency")) {
      issues.push({ field: "packs", message: "allowedRegions/allowedZones are checked by the 'gdpr-residency' pack: add it to packs" });
    }
    if (issues.length > 0) throw new ValidationError(`CompliancePolicy '${id}'`, issues);
    this.packs = [...new Set(props.packs)];
    this.dataClassification = classification;
    this.failOn = props.failOn ?? "error";

    this.node.addValidation({ validate: () => this.validateStack() });
  }

  /** Runs the packs over the stack as it synthesizes now. */
  check(): Report {
    const stack = TerraformStack.of(this);
    // The policy judges the final attributes (overrides and resolved tokens included), as Terraform will see them.
    const resources = resourcesFromTerraformJson(stack.toTerraform()).map((r) => ({ ...r, acknowledgements: [] }));
    return runChecks(resources, {
      packs: this.packs,
      residency: { allowedRegions: this.allowedRegions, allowedZones: this.allowedZones },
      defaultClassification: this.dataClassification,
      acknowledgements: Compliance.acknowledgementsUnder(stack),
    });
  }

  runtimeRules(): RuntimeRule[] {
    return runtimeRulesFor(this.packs, this.allowedRegions);
  }

  private validateStack(): string[] {
    const report = this.check();
    const stack = TerraformStack.of(this);
    const byPath = new Map(stack.node.findAll().map((c) => [c.node.path, c] as const));
    const at = (f: Finding): IConstruct => (f.constructPath ? byPath.get(f.constructPath) : undefined) ?? this;
    if (!this.annotated) {
      this.annotated = true;
      for (const f of report.findings) if (!(this.failOn === "warning" || f.level === "error")) Annotations.of(at(f)).addWarning(describe(f));
      for (const f of report.acknowledged) Annotations.of(at(f)).addInfo(`acknowledged ${describe(f)} Reason: ${f.acknowledgement!.reason}`);
      for (const a of report.unusedAcknowledgements) Annotations.of(byPath.get(a.source) ?? this).addWarning(`acknowledgement of ${a.ruleId} matches no finding: remove it`);
    }
    if (!hasFailures(report, this.failOn)) return [];
    return report.findings.filter((f) => this.failOn === "warning" || f.level === "error").map(describe);
  }
}

function describe(f: Finding): string {
  return `${f.ruleId} ${f.level} at ${f.constructPath ?? f.address} (${f.address}) ${f.attributePath}: ${f.message}. Fix: ${f.remediation}`;
}

const ACKS = Symbol.for("gpufabric.compliance.acknowledgements");

interface Recorded {
  readonly ruleId: string;
  readonly reason: string;
}

type WithAcks = IConstruct & { [ACKS]?: Recorded[] };

/** Copies inherited acknowledgements into each resource's `//` metadata, so `gpufabric check` sees them in cdktf.out. */
class AcknowledgementMetadata implements IAspect {
  visit(node: IConstruct): void {
    if (!TerraformResource.isTerraformResource(node)) return;
    const acks = node.node.scopes.flatMap((scope) => ((scope as WithAcks)[ACKS] ?? []).map((a) => ({ ...a, source: scope.node.path })));
    if (acks.length > 0) (node as TerraformResource).addOverride("//.gpufabric.acknowledgements", acks);
  }
}

export class Compliance {
  /**
   * Accepts findings of `ruleId` on `construct` and everything under it. The reason is kept with the
   * finding in every report; say why the risk is acceptable or handled elsewhere.
   */
  static acknowledge(construct: IConstruct, ruleId: string, reason: string): void {
    const issues: FieldIssue[] = [];
    if (!ruleById(ruleId)) issues.push({ field: "ruleId", message: `unknown rule '${ruleId}': use an id from docs/policies.md, e.g. GF-POD-001` });
    if (typeof reason !== "string" || reason.trim().length < MIN_REASON_LENGTH) {
      issues.push({ field: "reason", message: `give a reason of at least ${MIN_REASON_LENGTH} characters that says why the finding is acceptable` });
    }
    if (issues.length > 0) throw new ValidationError(`Compliance.acknowledge on '${construct.node.path}'`, issues);
    const target = construct as WithAcks;
    const list = (target[ACKS] ??= []);
    if (list.length === 0) Aspects.of(construct).add(new AcknowledgementMetadata());
    list.push({ ruleId, reason: reason.trim() });
  }

  /** Every acknowledgement declared on `scope` or below, aimed by construct path. */
  static acknowledgementsUnder(scope: IConstruct): TargetedAcknowledgement[] {
    return scope.node.findAll().flatMap((c) =>
      ((c as WithAcks)[ACKS] ?? []).map((a) => ({ ruleId: a.ruleId, reason: a.reason, source: c.node.path, constructPath: c.node.path })),
    );
  }
}
