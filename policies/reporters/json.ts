import type { Report } from "../model.ts";
import { summarize } from "./summary.ts";

export function renderJson(report: Report): string {
  return JSON.stringify(
    {
      packs: report.packs,
      summary: summarize(report),
      findings: report.findings,
      acknowledged: report.acknowledged,
      unusedAcknowledgements: report.unusedAcknowledgements,
      rules: report.rules.map((r) => ({ id: r.id, name: r.name, level: r.level, title: r.title, controls: r.controls })),
    },
    null,
    2,
  );
}
