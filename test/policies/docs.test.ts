import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { allRules, packs } from "../../policies/index.ts";
import { renderPolicyDocs } from "../../policies/docs.ts";

describe("docs/policies.md", () => {
  it("is current: regenerate it with `npm run docs:policies`", () => {
    const onDisk = readFileSync(new URL("../../docs/policies.md", import.meta.url), "utf8");
    expect(onDisk).toBe(renderPolicyDocs());
  });

  it("documents every rule with its level, controls, rationale and fix", () => {
    const docs = renderPolicyDocs();
    for (const rule of allRules) {
      expect(docs).toContain(`### ${rule.id}`);
      expect(docs).toContain(`Why: ${rule.rationale}`);
      expect(docs).toContain(`Fix: ${rule.remediation}`);
    }
  });

  it("maps every rule only to controls its pack declares", () => {
    for (const rule of allRules) for (const c of rule.controls) expect(Object.keys(packs[c.pack].controls), `${rule.id} → ${c.pack} ${c.control}`).toContain(c.control);
  });

  it("covers every control the brief names for HIPAA and SOC 2 with at least one rule", () => {
    for (const id of ["hipaa", "soc2", "gdpr-residency"] as const) {
      for (const control of Object.keys(packs[id].controls)) {
        expect(allRules.some((r) => r.controls.some((c) => c.pack === id && c.control === control)), `${id} ${control}`).toBe(true);
      }
    }
  });
});
