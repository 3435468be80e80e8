import type { Report } from "../model.ts";

export interface Summary {
  readonly resources: number;
  readonly rules: number;
  readonly errors: number;
  readonly warnings: number;
  readonly acknowledged: number;
  readonly passed: number;
}

export function summarize(report: Report): Summary {
  return {
    resources: report.resourceCount,
    rules: report.rules.length,
    errors: report.findings.filter((f) => f.level === "error").length,
    warnings: report.findings.filter((f) => f.level === "warning").length,
    acknowledged: report.acknowledged.length,
    passed: report.evaluations.filter((e) => e.status === "compliant").length,
  };
}
