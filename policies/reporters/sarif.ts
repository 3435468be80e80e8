import type { Log, ReportingDescriptor, Result } from "sarif";
import type { Finding, Report } from "../model.ts";
import { packs } from "../packs/index.ts";

const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

function result(f: Finding, ruleIndex: number): Result {
  const logicalLocations = [
    { fullyQualifiedName: f.address, kind: "resource" },
    ...(f.constructPath ? [{ fullyQualifiedName: f.constructPath, kind: "module" }] : []),
  ];
  return {
    ruleId: f.ruleId,
    ruleIndex,
    level: f.level,
    message: { text: `${f.message} (${f.attributePath}). Fix: ${f.remediation}` },
    locations: [
      {
        ...(f.file
          ? { physicalLocation: { artifactLocation: { uri: f.file.split("\\").join("/") }, ...(f.line ? { region: { startLine: f.line } } : {}) } }
          : {}),
        logicalLocations,
      },
    ],
    partialFingerprints: { "gpufabricFinding/v1": `${f.ruleId}:${f.address}:${f.attributePath}` },
    properties: { attributePath: f.attributePath, address: f.address, ...(f.constructPath ? { constructPath: f.constructPath } : {}) },
    ...(f.acknowledgement
      ? { suppressions: [{ kind: "external" as const, status: "accepted" as const, justification: f.acknowledgement.reason, properties: { source: f.acknowledgement.source } }] }
      : {}),
  };
}

/** SARIF 2.1.0: acknowledged findings are results with an accepted suppression, so code-scanning tools show them as dismissed. */
export function renderSarif(report: Report, version: string): string {
  const rules: ReportingDescriptor[] = report.rules.map((r) => ({
    id: r.id,
    name: r.name,
    shortDescription: { text: r.title },
    fullDescription: { text: r.rationale },
    help: {
      text: `${r.rationale}\n\nFix: ${r.remediation}`,
      markdown: `${r.rationale}\n\n**Fix:** ${r.remediation}\n\n**Controls:** ${r.controls.map((c) => `${packs[c.pack].title} ${c.control}`).join("; ")}`,
    },
    defaultConfiguration: { level: r.level },
    properties: { tags: [...new Set(r.controls.map((c) => `${c.pack}/${c.control}`))] },
  }));
  const index = new Map(report.rules.map((r, i) => [r.id, i]));
  const log: Log = {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "gpufabric", semanticVersion: version, version, rules } },
        results: [...report.findings, ...report.acknowledged].map((f) => result(f, index.get(f.ruleId) ?? -1)),
        properties: { packs: [...report.packs] },
      },
    ],
  };
  // Compact: reports over thousands of resources are read by tools, and are a fifth of the size.
  return JSON.stringify(log);
}
