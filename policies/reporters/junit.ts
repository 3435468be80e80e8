import type { Evaluation, Finding, Report } from "../model.ts";

function xml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    // Characters XML 1.0 does not allow at all.
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, "");
}

/** One test suite per rule, one test case per resource the rule applies to; acknowledged findings are skipped with their reason. */
export function renderJunit(report: Report): string {
  const evaluationsByRule = new Map<string, Evaluation[]>();
  for (const e of report.evaluations) {
    const list = evaluationsByRule.get(e.ruleId);
    if (list) list.push(e);
    else evaluationsByRule.set(e.ruleId, [e]);
  }
  const findingsByKey = new Map<string, Finding[]>();
  for (const f of [...report.findings, ...report.acknowledged]) {
    const key = `${f.ruleId} ${f.address}`;
    const list = findingsByKey.get(key);
    if (list) list.push(f);
    else findingsByKey.set(key, [f]);
  }
  const suites: string[] = [];
  let total = 0;
  let failures = 0;
  let skipped = 0;
  for (const rule of report.rules) {
    const evaluations = evaluationsByRule.get(rule.id) ?? [];
    const cases = evaluations.map((e) => {
      const found = findingsByKey.get(`${e.ruleId} ${e.address}`) ?? [];
      const open = `    <testcase classname="${xml(rule.id)}" name="${xml(e.address)}">`;
      if (e.status === "compliant") return `    <testcase classname="${xml(rule.id)}" name="${xml(e.address)}"/>`;
      if (e.status === "acknowledged") {
        const ack = found[0]?.acknowledgement;
        return `${open}\n      <skipped message="${xml(`acknowledged: ${ack?.reason ?? ""}`)}"/>\n    </testcase>`;
      }
      const body = found
        .map((f) => `${f.attributePath}: ${f.message}${f.constructPath ? `\nconstruct: ${f.constructPath}` : ""}\nfix: ${f.remediation}`)
        .join("\n\n");
      return `${open}\n      <failure type="${rule.level}" message="${xml(found.map((f) => f.message).join("; "))}">${xml(body)}</failure>\n    </testcase>`;
    });
    const suiteFailures = evaluations.filter((e) => e.status === "non-compliant").length;
    const suiteSkipped = evaluations.filter((e) => e.status === "acknowledged").length;
    total += evaluations.length;
    failures += suiteFailures;
    skipped += suiteSkipped;
    suites.push(
      `  <testsuite name="${xml(`${rule.id} ${rule.title}`)}" tests="${evaluations.length}" failures="${suiteFailures}" errors="0" skipped="${suiteSkipped}">` +
        (cases.length ? `\n${cases.join("\n")}\n  ` : "") +
        `</testsuite>`,
    );
  }
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="gpufabric check (${xml(report.packs.join(", "))})" tests="${total}" failures="${failures}" errors="0" skipped="${skipped}">`,
    ...suites,
    `</testsuites>`,
    "",
  ].join("\n");
}
