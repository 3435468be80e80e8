import type { Finding, Report } from "../model.ts";
import { summarize } from "./summary.ts";

/** Escapes a value for a Markdown table cell. */
function cell(value: string | undefined): string {
  if (!value) return "";
  return value.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function code(value: string | undefined): string {
  return value ? `\`${value.replace(/`/g, "'")}\`` : "";
}

function table(findings: readonly Finding[], withReason: boolean): string[] {
  const head = withReason
    ? ["| Rule | Level | Resource | Construct | Attribute | Finding | Reason |", "| --- | --- | --- | --- | --- | --- | --- |"]
    : ["| Rule | Level | Resource | Construct | Attribute | Finding | Fix |", "| --- | --- | --- | --- | --- | --- | --- |"];
  return [
    ...head,
    ...findings.map(
      (f) =>
        `| ${f.ruleId} | ${f.level} | ${cell(code(f.address))} | ${cell(code(f.constructPath))} | ${cell(code(f.attributePath))} | ${cell(f.message)} | ${cell(withReason ? `${f.acknowledgement!.reason} (${f.acknowledgement!.source})` : f.remediation)} |`,
    ),
  ];
}

export function renderMarkdown(report: Report): string {
  const s = summarize(report);
  const lines = [
    `## gpufabric compliance: ${s.errors === 0 && s.warnings === 0 ? "passed" : `${s.errors} errors, ${s.warnings} warnings`}`,
    "",
    `Packs: ${report.packs.map((p) => code(p)).join(", ")} · ${s.resources} resources · ${s.rules} rules · ${s.passed} checks passed · ${s.acknowledged} acknowledged`,
    "",
  ];
  if (report.findings.length > 0) lines.push("### Findings", "", ...table(report.findings, false), "");
  if (report.acknowledged.length > 0) lines.push("### Acknowledged", "", ...table(report.acknowledged, true), "");
  if (report.unusedAcknowledgements.length > 0) {
    lines.push("### Unused acknowledgements", "", "These acknowledge findings that no longer occur; remove them.", "");
    for (const a of report.unusedAcknowledgements) lines.push(`- ${a.ruleId} on ${code(a.target)}: ${cell(a.reason)}`);
    lines.push("");
  }
  if (report.findings.length === 0 && report.acknowledged.length === 0) lines.push("No findings.", "");
  return lines.join("\n");
}
