/**
 * Pins the scheduler's decisions across commits: the digest of everything it says on seeded
 * scenarios, and on the simulator's studio-mixed workload, must match golden/decisions.json; and the
 * `bench:scheduler --json --no-timing` output (every policy on every suite, and the targets) must match
 * golden/bench-scheduler-no-timing.json. A change that is meant to alter decisions updates the files in
 * the same commit (GPUFABRIC_UPDATE_GOLDEN=1 rewrites them), so "same decisions" in a speed-up's message
 * is something the tests check, not a claim.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createPolicy } from "../../runtime/sim/policies.ts";
import type { SimPolicy } from "../../runtime/sim/policy.ts";
import { simulate } from "../../runtime/sim/simulator.ts";
import type { Workload } from "../../runtime/sim/workload.ts";
import { studioMixedWorkload } from "../../runtime/sim/workloads/studio-mixed.ts";
import { runElasticComparison } from "../../bench/scheduler-elastic.ts";
import { runReference } from "../../bench/scheduler-reference.ts";
import { runSchedulerSuites } from "../../bench/scheduler-suites.ts";
import { sharedDataDir } from "../support/shared.ts";
import { TRACE_SCENARIOS, traceScenario } from "./decision-trace.ts";

const update = process.env.GPUFABRIC_UPDATE_GOLDEN === "1";
const HOW = "if that is intended, rerun `GPUFABRIC_UPDATE_GOLDEN=1 npx vitest run test/scheduler/decisions-golden.test.ts` and commit the file with the change that explains it";

/** A golden file of named entries: each check compares one entry, or rewrites it under GPUFABRIC_UPDATE_GOLDEN=1. */
function goldenFile(name: string) {
  const path = fileURLToPath(new URL(`./golden/${name}`, import.meta.url));
  const golden: Record<string, unknown> = JSON.parse(readFileSync(path, "utf8"));
  const actual: Record<string, unknown> = {};
  return (key: string, value: unknown): void => {
    actual[key] = value;
    if (update) writeFileSync(path, `${JSON.stringify({ ...golden, ...actual }, null, 2)}\n`);
    else expect(value, `decisions of '${key}' (golden/${name}) changed: ${HOW}`).toEqual(golden[key]);
  };
}

const check = goldenFile("decisions.json");
const checkBench = goldenFile("bench-scheduler-no-timing.json");

/** The simulator's run of a workload with every step's decisions folded into a digest, and its --no-timing row. */
function simDigest(workload: Workload, seed: number) {
  // The same policy the simulator CLI and bench:scheduler build.
  const inner = createPolicy("gpufabric", workload, seed);
  const hash = createHash("sha256");
  const policy: SimPolicy = {
    name: inner.name,
    get decisionCount() {
      return inner.decisionCount;
    },
    submit: (run, now) => {
      const res = inner.submit(run, now);
      hash.update(`submit ${now} ${run.id} ${JSON.stringify(res)}\n`);
      return res;
    },
    step: (now) => {
      const step = inner.step(now);
      hash.update(`step ${now} ${JSON.stringify(step.decisions)}\n`);
      return step;
    },
    finished: (runId, stageId, now, outcome) => inner.finished(runId, stageId, now, outcome),
  };
  const { row } = simulate(workload, policy, { seed });
  return { digest: hash.digest("hex"), row };
}

describe("decisions pinned across commits", () => {
  for (const sc of TRACE_SCENARIOS) {
    it(`trace '${sc.name}' says exactly what it said before`, () => {
      check(`trace:${sc.name}`, traceScenario(sc));
    });
  }

  it("the simulator's studio-mixed run (seed 1) makes the same decisions and the same --no-timing row", () => {
    check("sim:studio-mixed:1", simDigest(studioMixedWorkload(1), 1));
  });
});

// JSON round trip: the file holds what `--json` prints (no undefined fields).
const asPrinted = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

describe("bench:scheduler --json --no-timing pinned across commits", () => {
  // The built-in suites (studio-mixed on every policy, scale on gpufabric) need no data: always checked.
  it("the built-in suites (seed 1) print the same rows, suite spreads and targets", () => {
    checkBench("builtin:1", asPrinted(runSchedulerSuites({ seed: 1, timed: false, wfinstancesDir: null, comfyuiDir: null })));
  });

  // The reference section on its random DAGs (MILP, PEFT, CPOP, min-min, max-min): always checked.
  it("the reference section on the built-in random DAGs (seed 1) prints the same figures", async () => {
    checkBench("reference:builtin:1", asPrinted(await runReference({ seed: 1, timed: false, wfinstancesDir: null })));
  });

  // The elastic section (elastic vs fixed-for-peak vs fixed-for-average on studio-bursty): always checked.
  it("the elastic section (seed 1) prints the same figures and verdicts", () => {
    checkBench("elastic:1", asPrinted(runElasticComparison({ seed: 1 })));
  });

  // The whole output, WfCommons and ComfyUI suites too, where the sample data set is beside the checkout.
  const wf = sharedDataDir("wfinstances");
  const comfy = sharedDataDir("comfyui");
  it.skipIf(wf === null || comfy === null)("every suite (seed 1) prints exactly what `npm run bench:scheduler -- --json --no-timing` printed before", () => {
    checkBench("all:1", asPrinted(runSchedulerSuites({ seed: 1, timed: false, wfinstancesDir: wf, comfyuiDir: comfy })));
  });
});
