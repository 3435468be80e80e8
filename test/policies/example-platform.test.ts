import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { CompliancePolicy } from "../../constructs/index.ts";
import { defineStudioPlatform } from "../../main.ts";

describe("the example platform (main.ts)", () => {
  it("synthesizes clean under every pack, with its acknowledgements listed", () => {
    const stack = defineStudioPlatform(Testing.app());
    expect(() => Testing.synth(stack, true)).not.toThrow();
    const policy = stack.node.findAll().find((c): c is CompliancePolicy => c instanceof CompliancePolicy)!;
    expect(policy.packs).toEqual(["gpu-baseline", "hipaa", "soc2", "gdpr-residency"]);
    const report = policy.check();
    expect(report.findings).toEqual([]);
    expect(report.unusedAcknowledgements).toEqual([]);
    // The batch cluster's workers hold the whole pool in a segment of their own, as the interactive agent holds its GPUs.
    expect(report.acknowledged.map((f) => `${f.ruleId} ${f.constructPath}`).sort()).toEqual(["GF-GPU-006 studio/BatchPipeline/Workers", "GF-GPU-006 studio/InteractiveComfy/Agent"]);
    for (const f of report.acknowledged) expect(f.acknowledgement!.reason.length).toBeGreaterThan(40);
  });
});
