/** The dashboard's pure helpers: formatting, hash routes, the login link's token, live updates of the runs list. */
import { describe, expect, it } from "vitest";
import { formatAgo, formatDuration, formatMiB, formatPercent, queryString } from "../../ui/src/lib/format.ts";
import { parseRoute, runHref, tokenFromHash } from "../../ui/src/lib/route.ts";
import { applyRunEvent, type RunSummary } from "../../ui/src/lib/runs.ts";

describe("formatting", () => {
  it("formats durations at a precision fit for their size", () => {
    expect([0.25, 4.25, 42, 245, 7620].map(formatDuration)).toEqual(["250 ms", "4.3 s", "42 s", "4 m 05 s", "2 h 07 m"]);
    expect(formatDuration(null)).toBe("—");
  });

  it("formats MiB, percentages and ages", () => {
    expect([512, 24576, 81920].map(formatMiB)).toEqual(["512 MiB", "24.0 GiB", "80.0 GiB"]);
    expect([0.5, 0.125, 1].map(formatPercent)).toEqual(["50 %", "12.5 %", "100 %"]);
    const now = Date.parse("2026-01-01T01:00:00Z");
    expect(formatAgo("2026-01-01T00:59:30Z", now)).toBe("30 s ago");
    expect(formatAgo("2026-01-01T00:00:00Z", now)).toBe("1 h ago");
  });

  it("leaves empty filters out of the query string", () => {
    expect(queryString({ status: "", workflow: "render", limit: 50, cursor: null })).toBe("?workflow=render&limit=50");
    expect(queryString({ status: "" })).toBe("");
  });
});

describe("routes", () => {
  it("parses the contract's hash routes", () => {
    expect(parseRoute("")).toEqual({ page: "runs" });
    expect(parseRoute("#/runs")).toEqual({ page: "runs" });
    expect(parseRoute(runHref("run/01 x"))).toEqual({ page: "run", id: "run/01 x" });
    expect(parseRoute("#/workflows/img2img")).toEqual({ page: "workflow", name: "img2img" });
    for (const page of ["gpus", "fairshare", "admin", "usage", "login"]) expect(parseRoute(`#/${page}`)).toEqual({ page });
    expect(parseRoute("#/nope/1/2")).toEqual({ page: "not-found", path: "/nope/1/2" });
  });

  it("reads the login link's token only from the exact #token= fragment", () => {
    expect(tokenFromHash("#token=gf_abc%2B1")).toBe("gf_abc+1");
    expect(tokenFromHash("#/runs")).toBeNull();
    expect(tokenFromHash("#/login?token=x")).toBeNull();
    expect(tokenFromHash("#token=a&other=b")).toBeNull();
  });
});

describe("applyRunEvent", () => {
  const run = (id: string, createdAt: string, status = "running", workflow = "w"): RunSummary => ({
    id,
    status,
    workflow,
    priority: "batch",
    submittedBy: "u",
    createdAt,
    updatedAt: createdAt,
    stages: { total: 2, succeeded: 0, running: 1, failed: 0 },
  });
  const none = { status: "", workflow: "", priority: "" };
  const rows = [run("b", "2026-01-01T00:00:02Z"), run("a", "2026-01-01T00:00:01Z")];

  it("replaces a run on the page in place", () => {
    const next = applyRunEvent(rows, run("a", "2026-01-01T00:00:01Z", "succeeded"), none, false, 50);
    expect(next.map((r) => `${r.id}:${r.status}`)).toEqual(["b:running", "a:succeeded"]);
  });

  it("adds a new run at the top of the first page only, keeping one page", () => {
    const fresh = run("c", "2026-01-01T00:00:03Z");
    expect(applyRunEvent(rows, fresh, none, true, 2).map((r) => r.id)).toEqual(["c", "b"]);
    expect(applyRunEvent(rows, fresh, none, false, 2).map((r) => r.id)).toEqual(["b", "a"]);
  });

  it("drops a run that no longer matches the filters and ignores new ones that do not", () => {
    const running = { ...none, status: "running" };
    expect(applyRunEvent(rows, run("a", "2026-01-01T00:00:01Z", "failed"), running, true, 50).map((r) => r.id)).toEqual(["b"]);
    expect(applyRunEvent(rows, run("c", "2026-01-01T00:00:03Z", "running", "other"), { ...none, workflow: "w" }, true, 50).map((r) => r.id)).toEqual(["b", "a"]);
  });
});
