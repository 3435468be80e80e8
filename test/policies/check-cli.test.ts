import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { XMLValidator } from "fast-xml-parser";
import { describe, expect, it } from "vitest";
import { agentPod, editConfig, securePlatform } from "./support/platform.ts";
import { runtimeRulesFor } from "../../policies/index.ts";
import { runCli } from "../support/cli.ts";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

const gpufabric = (...args: string[]) => runCli("check", ...args);

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "gpufabric-check-"));
}

describe("gpufabric check", () => {
  it("checks a hand-written Terraform JSON file with no cdktf metadata, resolving references", () => {
    const { code, stdout } = gpufabric(fixture("hand-written.tf.json"));
    expect(code).toBe(1);
    expect(stdout).toMatch(/ERROR GF-RBAC-002 kubernetes_cluster_role_binding\.ops \S*hand-written\.tf\.json:37\n/);
    expect(stdout).toMatch(/ERROR GF-NET-001 kubernetes_namespace\.inference \S*hand-written\.tf\.json:5\n/);
    expect(stdout).toContain("ERROR GF-GPU-002 kubernetes_deployment.model_server");
    // The namespace came from `${kubernetes_namespace.inference.metadata[0].name}`.
    expect(stdout).toContain("no NetworkPolicy in namespace 'inference' selects this workload's pods");
  });

  it("reads cdktf metadata: construct paths and acknowledgements", () => {
    const { code, stdout } = gpufabric(fixture("cdktf-shaped.tf.json"), "--json");
    const report = JSON.parse(stdout);
    expect(code).toBe(0);
    expect(report.findings).toEqual([]);
    expect(report.acknowledged).toEqual([
      expect.objectContaining({ ruleId: "GF-POD-002", constructPath: "lab/Jobs/cleanup", acknowledgement: expect.objectContaining({ source: "lab/Jobs" }) }),
    ]);
  });

  it("walks a cdktf.out directory", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "stacks", "lab"), { recursive: true });
    writeFileSync(join(dir, "stacks", "lab", "cdk.tf.json"), readFileSync(fixture("hand-written.tf.json")));
    const { code, stdout } = gpufabric(dir, "--pack", "soc2", "--format", "json");
    expect(code).toBe(1);
    const report = JSON.parse(stdout);
    expect(report.packs).toEqual(["soc2"]);
    expect(report.findings[0].file).toMatch(/stacks\/lab\/cdk\.tf\.json$/);
  });

  it("takes acknowledgements from a file", () => {
    const dir = tempDir();
    const ack = join(dir, "acks.yaml");
    writeFileSync(ack, "acknowledgements:\n  - ruleId: GF-RBAC-002\n    address: kubernetes_cluster_role_binding.ops\n    reason: Break-glass access, reviewed every quarter\n");
    const report = JSON.parse(gpufabric(fixture("hand-written.tf.json"), "--json", "--ack", ack).stdout);
    expect(report.acknowledged.map((f: { ruleId: string }) => f.ruleId)).toEqual(["GF-RBAC-002"]);
    expect(report.findings.some((f: { ruleId: string }) => f.ruleId === "GF-RBAC-002")).toBe(false);
  });

  it("fails only at the --fail-on level", () => {
    const doc = securePlatform();
    agentPod(doc).container.image = "gpufabric/agent:latest";
    const file = join(tempDir(), "platform.tf.json");
    writeFileSync(file, JSON.stringify(doc));
    const residency = ["--classification", "phi", "--allow-region", "phi=eu-west-1", "--allow-zone", "phi=eu-west-1a,eu-west-1b"];
    const lenient = gpufabric(file, ...residency);
    expect(lenient.stdout).toContain("WARNING GF-POD-010");
    expect(lenient.code).toBe(0);
    expect(gpufabric(file, ...residency, "--fail-on", "warning").code).toBe(1);
  });

  it("takes residency from the run-time rules in the platform configs when no --allow-region is given", () => {
    const doc = securePlatform();
    editConfig(doc, (c) => (c.runtimeRules = runtimeRulesFor(["gdpr-residency"], { phi: ["eu-central-1"] })));
    const file = join(tempDir(), "platform.tf.json");
    writeFileSync(file, JSON.stringify(doc));
    const derived = JSON.parse(gpufabric(file, "--json", "--pack", "gdpr-residency").stdout);
    expect(derived.findings.map((f: { ruleId: string; attributePath: string }) => `${f.ruleId} ${f.attributePath}`)).toContain('GF-GEO-001 data["platform.json"].platform.region');
    const explicit = JSON.parse(gpufabric(file, "--json", "--pack", "gdpr-residency", "--allow-region", "phi=eu-west-1").stdout);
    expect(explicit.findings).toEqual([]);
  });

  it("writes SARIF, Markdown and JUnit", () => {
    const dir = tempDir();
    const out = join(dir, "report.sarif");
    expect(gpufabric(fixture("hand-written.tf.json"), "--format", "sarif", "-o", out).code).toBe(1);
    const sarif = JSON.parse(readFileSync(out, "utf8"));
    expect(sarif.version).toBe("2.1.0");
    const rbac = sarif.runs[0].results.find((r: { ruleId: string }) => r.ruleId === "GF-RBAC-002");
    expect(rbac.locations[0].physicalLocation).toMatchObject({ artifactLocation: { uri: expect.stringMatching(/hand-written\.tf\.json$/) }, region: { startLine: 37 } });
    expect(gpufabric(fixture("hand-written.tf.json"), "--format", "markdown").stdout).toContain("### Findings");
    expect(XMLValidator.validate(gpufabric(fixture("hand-written.tf.json"), "--format", "junit").stdout)).toBe(true);
  });

  it("answers usage errors with exit code 2 and names the option", () => {
    const badPack = gpufabric(fixture("hand-written.tf.json"), "--pack", "pci");
    expect(badPack.code).toBe(2);
    expect(badPack.stderr).toContain("--pack: unknown pack 'pci'");
    const missing = gpufabric(join(tempDir(), "nothing.tf.json"));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("does not exist");
    const region = gpufabric(fixture("hand-written.tf.json"), "--allow-region", "eu-west-1");
    expect(region.code).toBe(2);
    expect(region.stderr).toContain("--allow-region: 'eu-west-1' must look like CLASSIFICATION=place");
    const dir = tempDir();
    const ack = join(dir, "acks.json");
    writeFileSync(ack, JSON.stringify({ acknowledgements: [{ ruleId: "GF-RBAC-002", address: "kubernetes_cluster_role_binding.ops", reason: "ok" }] }));
    const shortReason = gpufabric(fixture("hand-written.tf.json"), "--ack", ack);
    expect(shortReason.code).toBe(2);
    expect(shortReason.stderr).toContain("acknowledgements[0].reason: must explain the acknowledgement in at least 10 characters");
  });
});
