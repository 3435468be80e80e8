/**
 * The vocabulary of the policy engine: synthesized resources, rules and what they return, findings.
 * Rules are pure functions over resources; everything else (loading, indexing, reporting) is built
 * around these types.
 */
import type { DataClassification } from "../runtime/config/schema.ts";

export type Level = "error" | "warning";

/** A Terraform resource block after normalization (blocks are objects, list blocks are arrays). */
export interface Resource {
  /** Terraform resource type, e.g. `kubernetes_deployment_v1`. */
  readonly type: string;
  /** Terraform resource name, e.g. `agent_deployment_1A2B3C`. */
  readonly name: string;
  /** `type.name`, the address Terraform uses. */
  readonly address: string;
  /** The construct path from cdktf metadata, when the JSON came from cdktf. */
  readonly constructPath?: string;
  /** File the resource was read from, relative to where the check started (when read from disk). */
  readonly file?: string;
  /** 1-based line of the resource's block in `file`, when it could be located. */
  readonly line?: number;
  /** Normalized attributes, without the `//` metadata entry. */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Acknowledgements carried in the resource's own metadata (`//.gpufabric.acknowledgements`). */
  readonly acknowledgements: readonly Acknowledgement[];
}

export interface Acknowledgement {
  readonly ruleId: string;
  readonly reason: string;
  /** Where the acknowledgement was declared: a construct path, or the acknowledgement file. */
  readonly source: string;
}

/** A control of a compliance framework a rule helps satisfy. */
export interface ControlRef {
  /** Pack id the control belongs to, e.g. `hipaa`. */
  readonly pack: PackId;
  /** Control id within the framework, e.g. `164.312(b)` or `CC6.6`. */
  readonly control: string;
}

export const PACK_IDS = ["gpu-baseline", "hipaa", "soc2", "gdpr-residency"] as const;
export type PackId = (typeof PACK_IDS)[number];

export type Outcome =
  | { readonly status: "not-applicable" }
  | { readonly status: "compliant" }
  | { readonly status: "non-compliant"; readonly attributePath: string; readonly message: string };

export interface Rule {
  /** Stable id, e.g. `GF-POD-001`. */
  readonly id: string;
  /** Short kebab-case name, e.g. `run-as-non-root`. */
  readonly name: string;
  readonly level: Level;
  readonly title: string;
  /** Why the rule exists: the risk it closes. */
  readonly rationale: string;
  /** How to fix a finding, in the words of the constructs and of plain Terraform. */
  readonly remediation: string;
  readonly controls: readonly ControlRef[];
  /** Resource kinds (provider type without `kubernetes_` and the version suffix) the rule looks at. */
  readonly kinds: readonly string[];
  /** Judges one resource; may return several outcomes (e.g. one per container). */
  check(resource: Resource, context: RuleContextView): Outcome | readonly Outcome[];
}

/** Residency limits: which regions (and optionally zones) may hold data of each classification. */
export interface Residency {
  readonly allowedRegions: Partial<Record<DataClassification, readonly string[]>>;
  readonly allowedZones: Partial<Record<DataClassification, readonly string[]>>;
}

/** What rules may ask about the whole set of resources; implemented by policies/context.ts. */
export interface RuleContextView {
  readonly resources: readonly Resource[];
  readonly residency: Residency;
  /** Classification assumed for objects that carry none (the platform's, from CompliancePolicy). */
  readonly defaultClassification: DataClassification;
  ofKind(kind: string): readonly Resource[];
  /** Resources of a namespaced kind in one namespace (objects without a namespace are in `default`). */
  ofKindIn(kind: string, namespace: string): readonly Resource[];
  /** Resolves a whole-string Terraform reference such as `${kubernetes_namespace_v1.x.metadata[0].name}`. */
  resolve(value: unknown): unknown;
  /** Computes a value once per check (indexes rules share), keyed by `key`. */
  memo<T>(key: string, compute: () => T): T;
  /** Platform configs found in ConfigMaps (`platform.json`), with the ConfigMap they came from. */
  platformConfigs(): readonly PlatformConfigSource[];
}

export interface PlatformConfigSource {
  readonly resource: Resource;
  /** The data key holding the config. */
  readonly key: string;
  /** The parsed JSON (not yet validated). */
  readonly raw: unknown;
  /** The config when it validates against the runtime schema. */
  readonly config?: import("../runtime/config/schema.ts").PlatformConfig;
  /** Why it does not validate, when it does not. */
  readonly problems?: readonly string[];
}

export interface Finding {
  readonly ruleId: string;
  readonly ruleName: string;
  readonly level: Level;
  readonly title: string;
  readonly address: string;
  readonly resourceType: string;
  readonly constructPath?: string;
  readonly file?: string;
  readonly line?: number;
  readonly attributePath: string;
  readonly message: string;
  readonly remediation: string;
  /** Set when the finding is acknowledged; it is still reported, as acknowledged. */
  readonly acknowledgement?: Acknowledgement;
}

/** One applicable (rule, resource) pair and how it came out: JUnit turns these into test cases. */
export interface Evaluation {
  readonly ruleId: string;
  readonly address: string;
  readonly status: "compliant" | "non-compliant" | "acknowledged";
}

export interface Report {
  readonly packs: readonly PackId[];
  readonly rules: readonly Rule[];
  readonly resourceCount: number;
  /** Non-compliant outcomes that are not acknowledged. */
  readonly findings: readonly Finding[];
  /** Non-compliant outcomes that are acknowledged, with the reason. */
  readonly acknowledged: readonly Finding[];
  readonly evaluations: readonly Evaluation[];
  /** Acknowledgements that matched no finding (stale: the rule passes or the resource is gone). */
  readonly unusedAcknowledgements: readonly (Acknowledgement & { readonly target: string })[];
}

export const compliant: Outcome = Object.freeze({ status: "compliant" });
export const notApplicable: Outcome = Object.freeze({ status: "not-applicable" });
export function violation(attributePath: string, message: string): Outcome {
  return { status: "non-compliant", attributePath, message };
}
