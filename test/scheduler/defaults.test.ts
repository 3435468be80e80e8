import { describe, expect, it } from "vitest";
import { SCHEDULER_DEFAULTS, SchedulerSettingsSchema } from "../../runtime/config/index.ts";
import { DEFAULT_SETTINGS, Scheduler } from "../../runtime/scheduler/index.ts";
import { gpu } from "./helpers.ts";

describe("scheduler defaults", () => {
  it("live once, in runtime/config, and pass its own schema", () => {
    expect(SchedulerSettingsSchema.parse(SCHEDULER_DEFAULTS)).toEqual(SCHEDULER_DEFAULTS);
    expect(DEFAULT_SETTINGS).toBe(SCHEDULER_DEFAULTS);
    expect(Object.isFrozen(SCHEDULER_DEFAULTS)).toBe(true);
  });

  it("fill what a scheduler is not given, and a given setting wins", () => {
    expect(new Scheduler({ gpus: [gpu("g0", "n0", 80)] }).settings).toEqual(SCHEDULER_DEFAULTS);
    const s = new Scheduler({ gpus: [gpu("g0", "n0", 80)], settings: { agingSeconds: 30 } });
    expect(s.settings).toEqual({ ...SCHEDULER_DEFAULTS, agingSeconds: 30 });
    expect(SCHEDULER_DEFAULTS.agingSeconds).not.toBe(30);
  });
});
