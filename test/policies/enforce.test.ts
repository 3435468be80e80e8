import { describe, expect, it } from "vitest";
import { evaluateSubmission, runtimeRulesFor } from "../../policies/index.ts";
import { parsePlatformConfig, type PlatformConfig } from "../../runtime/config/index.ts";
import { platformConfig } from "./support/platform.ts";

/** The test platform with a second, time-sliced pool and the rules of every pack. */
function config(edit: (c: any) => void = () => {}): PlatformConfig {
  const raw: any = platformConfig();
  raw.pools.push({
    ...raw.pools[0],
    name: "l4-shared",
    gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: 23034 },
    sharing: { mode: "time-slicing", replicas: 4 },
    devices: [{ id: "l4-shared-n0-g0", node: "l4-n0", index: 0, memoryMiB: 23034 }],
    priorityClasses: { interactive: "l4-interactive", batch: "l4-batch" },
    tenantQuotas: { research: 1 },
  });
  raw.workflows = [{ name: "segment-ct", format: "native", priority: "batch", tenants: ["clinic"], document: {} }];
  raw.runtimeRules = runtimeRulesFor(["gpu-baseline", "hipaa", "soc2", "gdpr-residency"], { phi: ["eu-west-1"] });
  edit(raw);
  return parsePlatformConfig(raw);
}

describe("evaluateSubmission", () => {
  it("refuses a phi tenant's run sent to a time-sliced pool, with the rule id", () => {
    const decision = evaluateSubmission(config(), { tenant: "clinic", workflow: "segment-ct", pool: "l4-shared" });
    expect(decision).toMatchObject({ allowed: false, ruleId: "gpu-baseline/regulated-gpu-isolation" });
    if (!decision.allowed) expect(decision.message).toMatch(/pool 'l4-shared' uses time-slicing sharing, allowed: exclusive, mig/);
  });

  it("names the HIPAA rule when only the HIPAA pack is on", () => {
    const decision = evaluateSubmission(config((c) => (c.runtimeRules = runtimeRulesFor(["hipaa"]))), { tenant: "clinic", pool: "l4-shared" });
    expect(decision).toMatchObject({ allowed: false, ruleId: "hipaa/phi-isolated-gpu" });
  });

  it("allows the same run on the exclusive pool, and an internal tenant on the time-sliced one", () => {
    expect(evaluateSubmission(config(), { tenant: "clinic", workflow: "segment-ct", pool: "h100" })).toEqual({ allowed: true });
    expect(evaluateSubmission(config(), { tenant: "clinic" })).toEqual({ allowed: true });
    expect(evaluateSubmission(config(), { tenant: "research", pool: "l4-shared" })).toEqual({ allowed: true });
  });

  it("refuses phi runs into a segment without default-deny", () => {
    const decision = evaluateSubmission(config((c) => (c.segments[0].defaultDenyEgress = false)), { tenant: "clinic" });
    expect(decision).toMatchObject({ allowed: false, ruleId: "hipaa/phi-default-deny-segment" });
  });

  it("refuses phi runs onto an unencrypted tier", () => {
    const decision = evaluateSubmission(config((c) => (c.tiers[0].encrypted = false)), { tenant: "clinic" });
    expect(decision).toMatchObject({ allowed: false, ruleId: "hipaa/phi-encrypted-tier" });
  });

  it("refuses phi runs on a platform outside the allowed regions, or with no region", () => {
    expect(evaluateSubmission(config((c) => (c.platform.region = "us-east-1")), { tenant: "clinic" })).toMatchObject({ allowed: false, ruleId: "gdpr-residency/phi-regions" });
    expect(evaluateSubmission(config((c) => (c.platform.region = null)), { tenant: "clinic" })).toMatchObject({ allowed: false, ruleId: "gdpr-residency/phi-regions" });
  });

  it("allows everything when the config carries no run-time rules", () => {
    expect(evaluateSubmission(config((c) => (c.runtimeRules = [])), { tenant: "clinic", pool: "l4-shared" })).toEqual({ allowed: true });
  });

  it("refuses requests that name what the config does not declare", () => {
    expect(evaluateSubmission(config(), { tenant: "nobody" })).toMatchObject({ allowed: false, ruleId: "config/unknown-tenant" });
    expect(evaluateSubmission(config(), { tenant: "clinic", workflow: "nope" })).toMatchObject({ allowed: false, ruleId: "config/unknown-workflow" });
    expect(evaluateSubmission(config(), { tenant: "research", workflow: "segment-ct" })).toMatchObject({ allowed: false, ruleId: "config/workflow-tenant" });
    expect(evaluateSubmission(config(), { tenant: "clinic", pool: "nope" })).toMatchObject({ allowed: false, ruleId: "config/unknown-pool" });
  });
});

describe("runtimeRulesFor", () => {
  it("emits rules that validate against the platform config schema, sorted and unique", () => {
    const rules = runtimeRulesFor(["gpu-baseline", "hipaa", "soc2", "gdpr-residency"], { phi: ["eu-west-1"], pii: ["eu-west-1", "eu-central-1"] });
    expect(rules.map((r) => r.id)).toEqual([...new Set(rules.map((r) => r.id))].sort());
    expect(() => config((c) => (c.runtimeRules = rules))).not.toThrow();
    expect(rules.find((r) => r.id === "gdpr-residency/pii-regions")?.require.allowedRegions).toEqual(["eu-west-1", "eu-central-1"]);
  });

  it("emits no residency rule without the gdpr-residency pack", () => {
    expect(runtimeRulesFor(["hipaa"], { phi: ["eu-west-1"] }).some((r) => r.id.startsWith("gdpr"))).toBe(false);
  });
});
