/**
 * docs/grafana/gpufabric.json against the agent's own metrics registry: every metric name the
 * dashboard's PromQL (panel targets and variable queries) asks for must be one the agent exports, so
 * a renamed or dropped metric fails here instead of leaving a blank panel. Histogram series
 * (_bucket, _sum, _count) count as their histogram's name.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentMetrics } from "../../runtime/agent/service/metrics.ts";
import { openSqliteStore, type Store } from "../../runtime/agent/store/index.ts";
import { REPO_ROOT } from "./service/harness.ts";

const DASHBOARD = join(REPO_ROOT, "docs/grafana/gpufabric.json");

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/** Checks brackets balance outside string literals, and returns the metric names an expression selects. */
export function metricNames(expr: string): string[] {
  // String literals first (label values, regexes), then label matchers, range and subquery durations.
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const stack: string[] = [];
  const pairs: Record<string, string> = { ")": "(", "]": "[", "}": "{" };
  for (const c of bare) {
    if (c === "(" || c === "[" || c === "{") stack.push(c);
    else if (c in pairs && stack.pop() !== pairs[c]) throw new Error(`unbalanced '${c}' in: ${expr}`);
  }
  if (stack.length > 0) throw new Error(`unclosed '${stack.pop()}' in: ${expr}`);
  const stripped = bare
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{?\w+\}?/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] !== undefined) continue; // a function or aggregation
    if (KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Every PromQL expression of the dashboard: panel targets (rows' nested panels too) and variable queries. */
function expressions(dashboard: any): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const visit = (panels: any[]) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === "string") out.push({ where: `panel '${p.title}' target ${t.refId}`, expr: t.expr });
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    // label_values(<selector>, <label>): the selector is PromQL, the label is not a metric.
    const m = /^label_values\((.*),\s*\w+\)$/.exec(q ?? "");
    out.push({ where: `variable '${v.name}'`, expr: m ? m[1]! : q });
  }
  return out;
}

describe("the Grafana dashboard", () => {
  let dir: string;
  let store: Store;
  /** Metric name → its type, as the agent's registry declares it. */
  const exported = new Map<string, string>();
  const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8"));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gpufabric-grafana-"));
    store = await openSqliteStore(join(dir, "state.db"));
    // The registry the agent serves /metrics from, with a real GPU so the DCGM gauges have series too.
    const metrics = new AgentMetrics({
      store,
      scheduler: () => undefined,
      devices: [{ id: "n0-g0", node: "n0", index: 0, name: "NVIDIA L4", memoryMiB: 23034, memoryUsedMiB: 0, uuid: "GPU-00000000-0000-0000-0000-000000000001", simulated: false }],
      loop: () => undefined,
      measure: async () => new Map([["GPU-00000000-0000-0000-0000-000000000001", { usedMiB: 100, utilPercent: 3 }]]),
    });
    for (const m of (await metrics.registry.metrics()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) exported.set(m[1]!, m[2]!);
  });
  afterAll(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The names an expression needs that the registry does not export. */
  const missing = (expr: string) =>
    metricNames(expr).filter((name) => {
      if (exported.has(name)) return false;
      const base = name.replace(/_(bucket|sum|count)$/, "");
      return !(base !== name && exported.get(base) === "histogram");
    });

  it("asks only for metrics the agent exports", () => {
    const exprs = expressions(dashboard);
    expect(exprs.length).toBeGreaterThan(15);
    const problems = exprs.flatMap(({ where, expr }) => missing(expr).map((name) => `${where}: '${name}' is not exported by the agent`));
    expect(problems).toEqual([]);
    // Each of the panels the dashboard promises reads what it should.
    const all = exprs.map((e) => e.expr).join("\n");
    for (const name of ["gpufabric_runs_submitted_total", "gpufabric_stage_duration_seconds_bucket", "gpufabric_queue_stages", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_UTIL", "gpufabric_gpu_seconds_total"]) {
      expect(all).toContain(name);
    }
  });

  it("would catch a renamed metric, a misspelled histogram series and broken brackets", () => {
    expect(missing('sum by (tenant) (rate(gpufabric_gpu_second_total{tenant=~"$tenant"}[5m]))')).toEqual(["gpufabric_gpu_second_total"]);
    expect(missing("histogram_quantile(0.9, sum by (le) (rate(gpufabric_stage_duration_seconds_buckets[5m])))")).toEqual(["gpufabric_stage_duration_seconds_buckets"]);
    expect(missing("rate(gpufabric_runs_active_sum[5m])")).toEqual(["gpufabric_runs_active_sum"]);
    expect(missing('100 * DCGM_FI_DEV_FB_USED / on (gpu, UUID) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE{gpu=~"a|b"})')).toEqual([]);
    expect(() => metricNames("sum(rate(gpufabric_queue_stages[5m])")).toThrow(/unclosed/);
  });

  it("is a Grafana dashboard with a Prometheus datasource variable that every panel uses", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    const ds = dashboard.templating.list.find((v: any) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus" });
    const panels = dashboard.panels.filter((p: any) => p.type !== "row");
    expect(new Set(dashboard.panels.map((p: any) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      for (const t of p.targets) expect(t.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      expect(p.gridPos.w * p.gridPos.h, p.title).toBeGreaterThan(0);
    }
    for (const title of ["Runs submitted and finished", "Stage duration (p50, p90, p99)", "Queue depth by state", "GPU framebuffer memory used", "GPU utilization", "GPU-seconds by tenant (dashboard range)"]) {
      expect(panels.map((p: any) => p.title)).toContain(title);
    }
  });
});
