import type { Finding, Report } from "../model.ts";
import { summarize } from "./summary.ts";

function where(f: Finding): string {
  const place = f.file ? ` ${f.file}${f.line ? `:${f.line}` : ""}` : "";
  return `${f.constructPath ? `${f.address} (${f.constructPath})` : f.address}${place}`;
}

export function renderText(report: Report): string {
  const lines: string[] = [];
  for (const f of report.findings) {
    lines.push(`${f.level.toUpperCase()} ${f.ruleId} ${where(f)}`);
    lines.push(`  ${f.attributePath}: ${f.message}`);
    lines.push(`  fix: ${f.remediation}`);
  }
  for (const f of report.acknowledged) {
    lines.push(`ACKNOWLEDGED ${f.ruleId} ${where(f)}`);
    lines.push(`  ${f.attributePath}: ${f.message}`);
    lines.push(`  reason: ${f.acknowledgement!.reason} (${f.acknowledgement!.source})`);
  }
  for (const a of report.unusedAcknowledgements) lines.push(`UNUSED ACKNOWLEDGEMENT ${a.ruleId} on ${a.target}: nothing to acknowledge; remove it`);
  const s = summarize(report);
  lines.push(
    `${s.resources} resources, ${s.rules} rules (${report.packs.join(", ")}): ${s.errors} errors, ${s.warnings} warnings, ${s.acknowledged} acknowledged, ${s.passed} passed`,
  );
  return lines.join("\n");
}
