import { App, Testing } from "cdktf";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { defineInsecurePlatform } from "../../examples/insecure/main.ts";
import { PACK_IDS, loadTerraformResources, runChecks } from "../../policies/index.ts";

/** What examples/insecure gets wrong, one rule id per weakness it was written with. */
const EXPECTED = [
  "GF-GEO-001", // health data in us-east-1, allowed only in eu-west-1
  "GF-GPU-002", // hand-written model server: GPU without the taint toleration
  "GF-GPU-003", // ... and without GPU node selection
  "GF-GPU-004", // phi tenant on a time-sliced pool
  "GF-GPU-006", // ... outside the pool's quota scope (no priority class)
  "GF-GPU-008", // ... with no priority class
  "GF-LIM-001",
  "GF-LIM-002",
  "GF-NET-001", // namespace outside any segment
  "GF-NET-002",
  "GF-NET-005", // egress to 0.0.0.0/0
  "GF-NS-001",
  "GF-POD-001",
  "GF-POD-002",
  "GF-POD-003",
  "GF-POD-004",
  "GF-POD-005",
  "GF-POD-009",
  "GF-POD-010",
  "GF-RBAC-001", // wildcard role
  "GF-RBAC-002", // cluster-admin binding
  "GF-STO-001", // unencrypted phi tier
  "GF-STO-002", // phi kept forever
];

describe("examples/insecure", () => {
  it("fails the synth, naming construct paths, rule ids and fixes", () => {
    const { stack } = defineInsecurePlatform(Testing.app());
    expect(() => Testing.synth(stack, true)).toThrow(/GF-GPU-004 error at insecure\/Reading\/PlatformConfig .*tenant 'radiology' \(phi, dedicated\) runs on time-sliced pool 'shared-l4'.*Fix: /);
  });

  it("produces exactly the expected rule ids", () => {
    const { policy } = defineInsecurePlatform(Testing.app());
    expect([...new Set(policy.check().findings.map((f) => f.ruleId))].sort()).toEqual(EXPECTED);
  });

  it("gives the same findings to `gpufabric check` on its cdktf.out", () => {
    const outdir = mkdtempSync(join(tmpdir(), "gpufabric-insecure-"));
    const app = new App({ outdir, skipValidation: true });
    defineInsecurePlatform(app);
    app.synth();
    const report = runChecks(loadTerraformResources(outdir), {
      packs: [...PACK_IDS],
      defaultClassification: "phi",
      residency: { allowedRegions: { phi: ["eu-west-1"] }, allowedZones: {} },
    });
    expect([...new Set(report.findings.map((f) => f.ruleId))].sort()).toEqual(EXPECTED);
    expect(report.findings.find((f) => f.ruleId === "GF-RBAC-002")?.constructPath).toBe("insecure/OpsAdmin");
  });
});
