import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { NetworkSegment } from "../../constructs/network-segment.ts";
import { Tenant, type TenantProps } from "../../constructs/tenant.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { TenantSchema } from "../../runtime/config/schema.ts";
import { synth } from "../support/synth.ts";

function setup() {
  const stack = new FabricStack(Testing.app(), "prod");
  const segment = new NetworkSegment(stack, "studio");
  return { stack, segment };
}

describe("Tenant", () => {
  it("applies its defaults and serializes into the platform config's tenant schema", () => {
    const { segment, stack } = setup();
    const tenant = new Tenant(stack, "Acme", { segment });
    expect(tenant.name).toBe("acme");
    expect(tenant.segment).toBe(segment);
    expect(tenant.toConfig()).toEqual({
      name: "acme",
      weight: 1,
      gpuQuota: null,
      vramQuotaMiB: null,
      roles: [],
      dataClassification: "internal",
      isolation: "shared",
    });
    expect(TenantSchema.parse(tenant.toConfig())).toEqual(tenant.toConfig());
  });

  it("keeps quotas, weight and roles", () => {
    const { segment, stack } = setup();
    const tenant = new Tenant(stack, "research", {
      segment,
      weight: 2.5,
      gpuQuota: 8,
      vramQuotaMiB: 0,
      roles: [
        { subject: "group:researchers", role: "submitter" },
        { subject: "alice", role: "admin" },
      ],
      dataClassification: "confidential",
    });
    expect(tenant.toConfig()).toMatchObject({
      weight: 2.5,
      gpuQuota: 8,
      vramQuotaMiB: 0,
      roles: [
        { subject: "group:researchers", role: "submitter" },
        { subject: "alice", role: "admin" },
      ],
      isolation: "shared",
    });
    expect(TenantSchema.parse(tenant.toConfig()).gpuQuota).toBe(8);
  });

  it.each(["pii", "phi"] as const)("isolates %s tenants on dedicated GPUs by default", (dataClassification) => {
    const { segment, stack } = setup();
    expect(new Tenant(stack, "clinic", { segment, dataClassification }).isolation).toBe("dedicated");
  });

  it("creates no Kubernetes objects of its own", () => {
    const { segment, stack } = setup();
    const before = synth(stack).allResources().length;
    new Tenant(stack, "acme", { segment });
    expect(synth(stack).allResources().length).toBe(before);
  });

  describe("rejects bad props with a fix-it message", () => {
    const cases: [string, Omit<TenantProps, "segment">, RegExp][] = [
      ["name", { name: "ACME" }, /name: "ACME" is not a DNS-1123 label/],
      ["weight 0", { weight: 0 }, /weight: 0 is not a positive number: give the tenant's share relative to others/],
      ["weight NaN", { weight: Number.NaN }, /weight: null is not a positive number/],
      ["negative gpu quota", { gpuQuota: -1 }, /gpuQuota: -1 is not a whole number of 0 or more/],
      ["fractional vram quota", { vramQuotaMiB: 1.5 }, /vramQuotaMiB: 1.5 is not a whole number of 0 or more/],
      ["empty subject", { roles: [{ subject: " ", role: "viewer" }] }, /roles\[0\].subject: is empty: give a token name, an OIDC subject or 'group:NAME'/],
      ["unknown role", { roles: [{ subject: "bob", role: "owner" as never }] }, /roles\[0\].role: "owner" is not allowed: use one of 'viewer', 'submitter', 'admin'/],
      ["classification", { dataClassification: "secret" as never }, /dataClassification: "secret" is not allowed: use one of 'public', 'internal', 'confidential', 'pii', 'phi'/],
      ["isolation", { isolation: "private" as never }, /isolation: "private" is not allowed: use one of 'shared', 'dedicated'/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      const create = () => {
        const { segment, stack } = setup();
        return new Tenant(stack, "acme", { segment, ...props });
      };
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(message);
    });

    it("requires a segment of the same stack", () => {
      const app = Testing.app();
      const stack = new FabricStack(app, "prod");
      expect(() => new Tenant(stack, "acme", {} as TenantProps)).toThrow(/segment: is required: pass the NetworkSegment the tenant's work runs in/);
      const other = new NetworkSegment(new FabricStack(app, "dr"), "studio");
      expect(() => new Tenant(stack, "acme2", { segment: other })).toThrow(/segment 'dr\/studio' belongs to stack 'dr', not 'prod'/);
    });

    it("refuses two tenants with one name in a stack", () => {
      const { segment, stack } = setup();
      new Tenant(stack, "acme", { segment });
      expect(() => new Tenant(stack, "acme2", { segment, name: "acme" })).toThrow(/tenant 'acme' is already declared by 'prod\/acme'/);
    });
  });
});
