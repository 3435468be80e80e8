/**
 * Construct props errors and failed validations read as their problems and fixes, without a Node stack trace,
 * in `gpufabric synth` (any app) and in the apps of this repository (main.ts, examples/insecure); the way to
 * write the output anyway matches what the app accepts.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli } from "../support/cli.ts";

const TIMEOUT = 120_000;
const dir = mkdtempSync(join(tmpdir(), "gpufabric-synth-errors-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const constructs = pathToFileURL(join(REPO_ROOT, "constructs/index.ts")).href;
// The app lives outside the repository: it names the repository's cdktf by path (the module the constructs use).
const cdktf = pathToFileURL(join(REPO_ROOT, "node_modules/cdktf/lib/index.js")).href;
/** A cdktf app of its own (not using runSynth), as a platform repository might write it. */
function app(name: string, body: string): string {
  const file = join(dir, `${name}.ts`);
  writeFileSync(
    file,
    `import { App } from ${JSON.stringify(cdktf)};\nimport { CompliancePolicy, FabricStack, NetworkSegment } from ${JSON.stringify(constructs)};\n` +
      `const app = new App({ outdir: process.env.CDKTF_OUTDIR });\n${body}\napp.synth();\n`
  );
  return `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(file)}`;
}

const STACK_FRAME = /^\s+at /m;

describe("gpufabric synth", () => {
  it(
    "prints a construct's props error without a stack trace and exits 1",
    () => {
      const result = runCli("synth", "--app", app("bad-props", `new FabricStack(app, "s", { platformName: "Bad_Name" });`), "--output", join(dir, "out-props"));
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("FabricStack 's' is invalid:\n  - platformName: \"Bad_Name\" is not a DNS-1123 label");
      expect(result.stderr).not.toMatch(STACK_FRAME);
      expect(result.stderr).not.toContain("issues: [");
      expect(result.stderr).not.toContain("Node.js v");
    },
    TIMEOUT
  );

  it(
    "prints failed validations without a stack trace, and names the App option in the form it is written",
    () => {
      const body = `const stack = new FabricStack(app, "s", { region: "us-east-1" });\nnew NetworkSegment(stack, "Seg", { name: "seg" });\nnew CompliancePolicy(stack, "C", { packs: ["gdpr-residency"], dataClassification: "phi", allowedRegions: ["eu-west-1"] });`;
      const result = runCli("synth", "--app", app("findings", body), "--output", join(dir, "out-findings"));
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/Validation failed with the following errors:\n\s+\[s\/C\] GF-GEO-001 error/);
      expect(result.stderr).not.toMatch(STACK_FRAME);
      expect(result.stderr).not.toContain("pass 'skipValidation: true' to your App configuration");
      expect(result.stderr).toContain("new App({ skipValidation: true })");
    },
    TIMEOUT
  );
});

describe("the repository's apps", () => {
  it(
    "examples/insecure prints its findings without a stack trace, and offers --skip-validation, the flag it takes",
    () => {
      const run = spawnSync(process.execPath, ["--import", "tsx", "examples/insecure/main.ts"], { cwd: REPO_ROOT, encoding: "utf8" });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain("GF-GEO-001 error");
      expect(run.stderr).not.toMatch(STACK_FRAME);
      expect(run.stderr).not.toContain("skipValidation: true");
      expect(run.stderr).toContain("--skip-validation");
    },
    TIMEOUT
  );
});

describe("runSynth", () => {
  it("prints a props error as its message and sets exit code 1; throws any other error on", async () => {
    const { runSynth, describeSynthError, FabricStack } = await import("../../constructs/index.ts");
    const { App } = await import("cdktf");
    const written: string[] = [];
    const write = process.stderr.write;
    const before = process.exitCode;
    process.stderr.write = ((chunk: string) => (written.push(chunk), true)) as typeof process.stderr.write;
    try {
      runSynth(() => void new FabricStack(new App({ outdir: join(dir, "in-process") }), "s", { platformName: "Bad_Name" }));
      expect(process.exitCode).toBe(1);
    } finally {
      process.stderr.write = write;
      process.exitCode = before;
    }
    expect(written.join("")).toMatch(/^FabricStack 's' is invalid:\n {2}- platformName: "Bad_Name" is not a DNS-1123 label/);
    expect(() => runSynth(() => { throw new TypeError("a bug"); })).toThrow(TypeError);
    expect(describeSynthError(new Error("Validation failed with the following errors:\n  x\n\nIf you wish to ignore these validations, pass 'skipValidation: true' to your App configuration.\n"), { skipValidationHint: "pass --skip-validation" })).toBe(
      "Validation failed with the following errors:\n  x\n\nFix the findings above, or pass --skip-validation."
    );
  });
});
