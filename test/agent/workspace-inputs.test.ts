/** What prepareWorkspace puts in an attempt's input folder: needed stages' outputs and the run's inputs. */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RUN_INPUTS_FILE, attemptPaths, prepareWorkspace } from "../../runtime/agent/executors/workspace.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-workspace-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("prepareWorkspace", () => {
  it.each(["copy", "hardlink"] as const)("places the run's inputs as run-inputs.json beside the needed stages' folders (%s)", async (mode) => {
    const staged = join(dir, "staged");
    mkdirSync(staged);
    writeFileSync(join(staged, "a.txt"), "from a");
    writeFileSync(join(staged, "run-inputs.json"), '{"seed":42}');
    const paths = attemptPaths(join(dir, "data"), "run-1", "b", 1);
    await prepareWorkspace(paths, [{ stageId: "a", artifacts: [{ name: "a.txt", path: join(staged, "a.txt") }] }, { runInputs: join(staged, "run-inputs.json") }], mode);
    expect(readdirSync(paths.inputs).sort()).toEqual(["a", RUN_INPUTS_FILE]);
    expect(JSON.parse(readFileSync(join(paths.inputs, RUN_INPUTS_FILE), "utf8"))).toEqual({ seed: 42 });
    expect(readFileSync(join(paths.inputs, "a", "a.txt"), "utf8")).toBe("from a");
  });

  it("refuses run inputs that are not a regular file", async () => {
    symlinkSync("/etc/hostname", join(dir, "link.json"));
    const paths = attemptPaths(join(dir, "data"), "run-1", "b", 1);
    await expect(prepareWorkspace(paths, [{ runInputs: join(dir, "link.json") }], "copy")).rejects.toThrow(/the run's inputs at .* is not a regular file/);
  });
});
