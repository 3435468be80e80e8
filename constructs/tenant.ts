import { Construct } from "constructs";
import { DataClassificationSchema, RoleSchema, type DataClassification, type Role, type TenantConfig } from "../runtime/config/schema.ts";
import { FabricStack, requireSameStack } from "./fabric-stack.ts";
import { NetworkSegment } from "./network-segment.ts";
import { PropIssues, checkedProps } from "./validation.ts";

export interface TenantRole {
  /** A token name, an OIDC subject, or `group:NAME` for an OIDC group. */
  readonly subject: string;
  readonly role: Role;
}

export interface TenantProps {
  /**
   * Name of the tenant (a DNS-1123 label).
   * @default the construct id, lower-cased
   */
  readonly name?: string;
  /** Segment the tenant's work runs in; its GPU quotas become ResourceQuotas in that namespace. */
  readonly segment: NetworkSegment;
  /**
   * Share of contended GPUs relative to other tenants.
   * @default 1
   */
  readonly weight?: number;
  /**
   * GPUs the tenant may hold at once across a deployment's pool (enforced by the agent).
   * @default no cap
   */
  readonly gpuQuota?: number;
  /**
   * VRAM the tenant may hold at once, in MiB (enforced by the agent).
   * @default no cap
   */
  readonly vramQuotaMiB?: number;
  /**
   * Who may view, submit or administer the tenant's runs.
   * @default []
   */
  readonly roles?: readonly TenantRole[];
  /**
   * The most sensitive data the tenant's workflows handle.
   * @default "internal"
   */
  readonly dataClassification?: DataClassification;
  /**
   * `dedicated` tenants never share a GPU with another tenant.
   * @default "dedicated" for pii and phi data, else "shared"
   */
  readonly isolation?: "shared" | "dedicated";
}

/** A tenant of the platform: a declaration the agent and GpuPool quotas read; it creates no Kubernetes objects. */
export class Tenant extends Construct {
  readonly name: string;
  readonly segment: NetworkSegment;
  readonly weight: number;
  readonly gpuQuota: number | undefined;
  readonly vramQuotaMiB: number | undefined;
  readonly roles: readonly TenantRole[];
  readonly dataClassification: DataClassification;
  readonly isolation: "shared" | "dedicated";

  constructor(scope: Construct, id: string, props: TenantProps) {
    super(scope, id);
    const { name, weight, dataClassification, isolation } = checkedProps(this, () => {
      const stack = FabricStack.of(this);
      const name = props?.name ?? id.toLowerCase();
      const issues = new PropIssues(`Tenant '${name}'`);
      issues.dnsLabel(props?.name === undefined ? "name (defaults to the id, lower-cased)" : "name", name);
      if (!(props?.segment instanceof NetworkSegment)) {
        issues.add("segment", "is required: pass the NetworkSegment the tenant's work runs in");
      }
      const weight = props?.weight ?? 1;
      if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
        issues.add("weight", `${JSON.stringify(weight)} is not a positive number: give the tenant's share relative to others, e.g. 1 or 2.5`);
      }
      if (props?.gpuQuota !== undefined) issues.nonNegativeInt("gpuQuota", props.gpuQuota);
      if (props?.vramQuotaMiB !== undefined) issues.nonNegativeInt("vramQuotaMiB", props.vramQuotaMiB);
      (props?.roles ?? []).forEach((r, i) => {
        if (typeof r?.subject !== "string" || r.subject.trim() === "") issues.add(`roles[${i}].subject`, "is empty: give a token name, an OIDC subject or 'group:NAME'");
        issues.oneOf(`roles[${i}].role`, r?.role, RoleSchema.options);
      });
      const dataClassification = props?.dataClassification ?? "internal";
      issues.oneOf("dataClassification", dataClassification, DataClassificationSchema.options);
      const isolation = props?.isolation ?? (dataClassification === "pii" || dataClassification === "phi" ? "dedicated" : "shared");
      issues.oneOf("isolation", isolation, ["shared", "dedicated"] as const);
      issues.throwIfAny();
      requireSameStack(this, props.segment, "segment", "segment");
      stack.claimName("tenant", name, this);
      return { name, weight, dataClassification, isolation };
    });

    this.name = name;
    this.segment = props.segment;
    this.weight = weight;
    this.gpuQuota = props.gpuQuota;
    this.vramQuotaMiB = props.vramQuotaMiB;
    this.roles = (props.roles ?? []).map((r) => ({ subject: r.subject, role: r.role }));
    this.dataClassification = dataClassification;
    this.isolation = isolation;
  }

  /** The tenant as the platform config records it. */
  toConfig(): TenantConfig {
    return {
      name: this.name,
      weight: this.weight,
      gpuQuota: this.gpuQuota ?? null,
      vramQuotaMiB: this.vramQuotaMiB ?? null,
      roles: this.roles.map((r) => ({ subject: r.subject, role: r.role })),
      dataClassification: this.dataClassification,
      isolation: this.isolation,
    };
  }
}
