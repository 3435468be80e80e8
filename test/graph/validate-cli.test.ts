import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const bin = new URL("../../bin/gpufabric.mjs", import.meta.url).pathname;

function validate(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, "validate", ...args], { encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), "validate-"));
const good = join(dir, "good.yaml");
writeFileSync(
  good,
  "apiVersion: gpufabric.dev/v1\nkind: Workflow\nmetadata: { name: good }\nspec:\n  stages:\n    - { id: prep, resources: { gpus: 0 } }\n    - { id: gen, needs: [prep], resources: { vram: 24Gi, model: flux1-dev } }\n",
);
const bad = join(dir, "bad.yaml");
writeFileSync(bad, "apiVersion: gpufabric.dev/v1\nkind: Workflow\nmetadata: { name: bad }\nspec:\n  stages:\n    - { id: a, resorces: { gpus: 1 } }\n");

describe("gpufabric validate", () => {
  it("prints the format and stages of a valid workflow and exits 0", () => {
    const { code, stdout } = validate(good);
    expect(code).toBe(0);
    expect(stdout).toContain("valid native workflow, 2 stages ('good')");
    expect(stdout).toMatch(/gen\s+prep\s+1\s+24Gi\s+flux1-dev/);
  });

  it("prints JSON with --json", () => {
    const { code, stdout } = validate(good, "--json");
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { valid: boolean; format: string; stages: { id: string; needs: string[]; gpus: number; vramMiB: number }[] };
    expect(out).toMatchObject({ valid: true, format: "native" });
    expect(out.stages[1]).toMatchObject({ id: "gen", needs: ["prep"], gpus: 1, vramMiB: 24576, model: "flux1-dev" });
  });

  it("prints the errors of an invalid workflow and exits 1 (findings; 2 is for usage errors)", () => {
    const { code, stderr } = validate(bad);
    expect(code).toBe(1);
    expect(stderr).toContain("spec.stages[0].resorces: unknown field; did you mean 'resources'?");
    const json = validate(bad, "--json");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ file: bad, valid: false, errors: [{ field: "spec.stages[0].resorces", message: "unknown field; did you mean 'resources'?" }] });
  });

  it("shows the GPU-affine stages of a ComfyUI prompt and names class types it has no figures for", () => {
    const prompt = join(dir, "acme.json");
    writeFileSync(prompt, JSON.stringify({ "1": { class_type: "LoadImage", inputs: { image: "a.png" } }, "2": { class_type: "AcmeFilter", inputs: { image: ["1", 0] } } }));
    const { code, stdout } = validate(prompt);
    expect(code).toBe(0);
    expect(stdout).toContain("valid ComfyUI prompt, 2 nodes in 1 GPU-affine stages ('acme')");
    expect(stdout).toMatch(/acmefilter-1\s+-\s+1\s+2Gi\s+-\s+2s\s+1,2/);
    expect(stdout).toContain("no cost figures for class types 'AcmeFilter'");
    const json = JSON.parse(validate(prompt, "--json").stdout) as { format: string; nodes: number; unknownClassTypes: string[]; stages: { comfyNodes: string[] }[] };
    expect(json).toMatchObject({ format: "comfyui", nodes: 2, unknownClassTypes: ["AcmeFilter"] });
    expect(json.stages[0]!.comfyNodes).toEqual(["1", "2"]);
  });

  it("exits 2 for a missing file and for a missing argument", () => {
    expect(validate(join(dir, "nope.yaml")).code).toBe(2);
    expect(validate().code).toBe(2);
  });
});
