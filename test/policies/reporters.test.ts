import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import AjvModule from "ajv-draft-04";
import addFormatsModule from "ajv-formats";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { PACK_IDS, render, resourcesFromTerraformJson, runChecks, type Report } from "../../policies/index.ts";
import { agentPod, residency, securePlatform } from "./support/platform.ts";

// Both are CommonJS modules that also export themselves as `default`, the one form typed under NodeNext.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;
const require = createRequire(import.meta.url);
// The schema's `language` pattern is valid only as a non-unicode regular expression, hence unicodeRegExp: false below.
// The official SARIF 2.1.0 schema (OASIS), as shipped by Microsoft's SARIF tooling.
const sarifSchema = JSON.parse(readFileSync(require.resolve("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"), "utf8"));

/** A report with an error, a warning and an acknowledged finding, with and without construct paths. */
function mixedReport(): Report {
  const doc = securePlatform();
  agentPod(doc).container.security_context.privileged = true; // error
  agentPod(doc).container.image = "gpufabric/agent:latest"; // warning
  doc.resource.kubernetes_role_binding_v1!.reader!.role_ref.name = "cluster-admin"; // acknowledged below
  doc.resource.kubernetes_role_binding_v1!.reader!["//"] = {
    metadata: { path: "lab/Ops/Reader", uniqueId: "reader" },
    gpufabric: { acknowledgements: [{ ruleId: "GF-RBAC-002", reason: "Break-glass group <ops> & \"on-call\" | audited", source: "lab/Ops" }] },
  };
  return runChecks(resourcesFromTerraformJson(doc, "stacks/lab/cdk.tf.json"), { packs: [...PACK_IDS], residency, defaultClassification: "phi" });
}

describe("reports", () => {
  const report = mixedReport();

  it("has the findings the report formats must carry", () => {
    expect(report.findings.map((f) => `${f.level} ${f.ruleId}`).sort()).toEqual(["error GF-POD-006", "warning GF-POD-010"]);
    expect(report.acknowledged.map((f) => f.ruleId)).toEqual(["GF-RBAC-002"]);
  });

  it("SARIF validates against the official SARIF 2.1.0 schema and marks acknowledged findings as suppressed", () => {
    const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
    addFormats(ajv);
    const validate = ajv.compile(sarifSchema);
    const sarif = JSON.parse(render(report, "sarif", "0.1.0"));
    expect(validate(sarif), JSON.stringify(validate.errors, null, 2)).toBe(true);
    const results = sarif.runs[0].results as any[];
    expect(results).toHaveLength(3);
    const privileged = results.find((r) => r.ruleId === "GF-POD-006");
    expect(privileged.level).toBe("error");
    expect(privileged.locations[0].physicalLocation.artifactLocation.uri).toBe("stacks/lab/cdk.tf.json");
    expect(privileged.locations[0].logicalLocations[0].fullyQualifiedName).toBe("kubernetes_deployment_v1.agent");
    expect(privileged.properties.attributePath).toBe("spec.template.spec.container[0].security_context.privileged");
    const acked = results.find((r) => r.ruleId === "GF-RBAC-002");
    expect(acked.suppressions[0]).toMatchObject({ kind: "external", status: "accepted" });
    expect(acked.locations[0].logicalLocations[1].fullyQualifiedName).toBe("lab/Ops/Reader");
    expect(sarif.runs[0].tool.driver.rules[privileged.ruleIndex].id).toBe("GF-POD-006");
  });

  it("the schema check can fail: a result without a message is rejected", () => {
    const ajv = new Ajv({ strict: false, unicodeRegExp: false });
    addFormats(ajv);
    const validate = ajv.compile(sarifSchema);
    const sarif = JSON.parse(render(report, "sarif", "0.1.0"));
    delete sarif.runs[0].results[0].message;
    expect(validate(sarif)).toBe(false);
  });

  it("JUnit is well-formed XML with one suite per rule, failures and skipped acknowledgements", () => {
    const xml = render(report, "junit", "0.1.0");
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "" }).parse(xml);
    const suites = doc.testsuites.testsuite as any[];
    expect(suites).toHaveLength(report.rules.length);
    expect(Number(doc.testsuites.failures)).toBe(2);
    expect(Number(doc.testsuites.skipped)).toBe(1);
    const rbac = suites.find((s) => s.name.startsWith("GF-RBAC-002"));
    expect(rbac.testcase.skipped.message).toContain('Break-glass group <ops> & "on-call" | audited');
    const pod = suites.find((s) => s.name.startsWith("GF-POD-006"));
    expect(pod.testcase.failure.type).toBe("error");
  });

  it("Markdown has a findings table with fixes and an acknowledged table with reasons, with pipes escaped", () => {
    const md = render(report, "markdown", "0.1.0");
    expect(md).toMatch(/^## gpufabric compliance: 1 errors, 1 warnings/);
    expect(md).toContain("| GF-POD-006 | error | `kubernetes_deployment_v1.agent` |");
    expect(md).toContain("### Acknowledged");
    expect(md).toContain('Break-glass group <ops> & "on-call" \\| audited (lab/Ops)');
    // Every table row has the same number of unescaped cell separators as its header.
    for (const row of md.split("\n").filter((l) => l.startsWith("| GF-"))) expect(row.replace(/\\\|/g, "").split("|").length).toBe(9);
  });

  it("JSON and text carry rule, resource, construct path, attribute and fix", () => {
    const json = JSON.parse(render(report, "json", "0.1.0"));
    expect(json.summary).toMatchObject({ errors: 1, warnings: 1, acknowledged: 1 });
    expect(json.acknowledged[0]).toMatchObject({ ruleId: "GF-RBAC-002", constructPath: "lab/Ops/Reader", address: "kubernetes_role_binding_v1.reader" });
    const text = render(report, "text", "0.1.0");
    expect(text).toContain("ERROR GF-POD-006 kubernetes_deployment_v1.agent");
    expect(text).toContain("ACKNOWLEDGED GF-RBAC-002 kubernetes_role_binding_v1.reader (lab/Ops/Reader)");
    expect(text).toMatch(/1 errors, 1 warnings, 1 acknowledged/);
  });
});
