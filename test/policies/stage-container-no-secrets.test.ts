import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { resourcesFromTerraformJson, ruleById, runChecks, PACK_IDS } from "../../policies/index.ts";
import { defineStudioPlatform } from "../../main.ts";
import { agentPod, editConfig, residency, securePlatform, type Doc } from "./support/platform.ts";

const RULE = "GF-AGT-005";

function check(doc: unknown) {
  return runChecks(resourcesFromTerraformJson(doc), { packs: [...PACK_IDS], rules: [ruleById(RULE)!], residency, defaultClassification: "phi" });
}

/** The example platform (main.ts) as `cdktf synth` writes it. */
function examplePlatform(): any {
  return JSON.parse(Testing.synth(defineStudioPlatform(Testing.app())));
}

/** The pod spec of the example's interactive agent (the batch one runs in cluster mode) and the index of its runner container. */
function interactiveAgent(doc: any): { pod: any; runner: number } {
  const [id] = Object.keys(doc.resource.kubernetes_deployment_v1).filter((k) => k.startsWith("InteractiveComfy_Agent"));
  const pod = doc.resource.kubernetes_deployment_v1[id!].spec.template.spec;
  return { pod, runner: pod.container.findIndex((c: any) => c.args[0] === "runner") };
}

describe(`${RULE} stage-container-no-secrets`, () => {
  it("is in the gpu-baseline, hipaa and soc2 packs", () => {
    expect(new Set(ruleById(RULE)!.controls.map((c) => c.pack))).toEqual(new Set(["gpu-baseline", "hipaa", "soc2"]));
  });

  it("passes on the example platform: the interactive agent runs stages in a runner container without Secrets, the batch cluster's control planes run none", () => {
    const report = check(examplePlatform());
    expect(report.findings).toEqual([]);
    expect(report.evaluations.filter((e) => e.status === "compliant").map((e) => e.address)).toEqual([expect.stringMatching(/^kubernetes_deployment_v1\.InteractiveComfy_Agent_/)]);
  });

  it("fails when a Secret volume of the example is mounted into its runner container", () => {
    const doc = examplePlatform();
    const { pod, runner } = interactiveAgent(doc);
    expect(runner).toBe(1);
    pod.container[runner].volume_mount.push({ name: "keyring", mount_path: "/keys", read_only: true });
    const findings = check(doc).findings;
    expect(findings).toHaveLength(1);
    expect(findings[0]!.attributePath).toBe(`spec.template.spec.container[1].volume_mount[${pod.container[runner].volume_mount.length - 1}]`);
    expect(findings[0]!.message).toMatch(/container 'runner' runs stages and mounts Secret 'interactive-comfy-keyring'/);
    expect(findings[0]!.address).toMatch(/^kubernetes_deployment_v1\.InteractiveComfy_Agent_/);
  });

  it("fails on a projected Secret mounted into the runner", () => {
    const doc = securePlatform();
    agentPod(doc).spec.volume.push({ name: "bundle", projected: { sources: [{ secret: { name: "fabric-tokens" } }] } });
    agentPod(doc).runner.volume_mount = [{ name: "bundle", mount_path: "/bundle", read_only: true }];
    expect(check(doc).findings.map((f) => f.message)).toEqual([expect.stringMatching(/mounts Secret 'fabric-tokens' \(volume 'bundle'\)/)]);
  });

  it("fails when the runner reads a Secret through env value_from or env_from", () => {
    const doc = securePlatform();
    agentPod(doc).runner.env = [
      { name: "NODE_ENV", value: "production" },
      { name: "TOKEN", value_from: { secret_key_ref: { name: "fabric-tokens", key: "alpha" } } },
    ];
    agentPod(doc).runner.env_from = [{ config_map_ref: { name: "settings" } }, { secret_ref: { name: "fabric-keyring" } }];
    const findings = check(doc).findings;
    expect(findings.map((f) => f.attributePath)).toEqual(["spec.template.spec.container[1].env[1].value_from.secret_key_ref", "spec.template.spec.container[1].env_from[1].secret_ref"]);
    expect(findings[0]!.message).toMatch(/reads Secret 'fabric-tokens' into TOKEN/);
    expect(findings[1]!.message).toMatch(/every key of Secret 'fabric-keyring'/);
  });

  it("fails on a single-container agent that starts stages itself (isolation mode bubblewrap) and mounts Secrets", () => {
    const doc: Doc = securePlatform();
    agentPod(doc).spec.container.splice(1, 1);
    editConfig(doc, (c) => delete c.isolation); // the schema's default mode is bubblewrap
    const findings = check(doc).findings;
    expect(findings.map((f) => f.attributePath)).toEqual([0, 1, 2, 3].map((i) => `spec.template.spec.container[0].volume_mount[${i}]`));
    expect(findings[0]!.message).toMatch(/container 'agent' runs stages and mounts Secret 'fabric-keyring'/);
  });

  it("leaves the agent's own container alone when stages run elsewhere, and pods that are not the agent's", () => {
    const doc: Doc = securePlatform();
    agentPod(doc).spec.container.splice(1, 1);
    // Mode runner with no runner container: stages do not run in the agent's container.
    expect(check(doc).evaluations).toEqual([]);
    const other = securePlatform();
    const pod = agentPod(other).spec;
    other.resource.kubernetes_deployment_v1!.agent!.metadata.labels = { app: "model-server" };
    other.resource.kubernetes_deployment_v1!.agent!.spec.template.metadata.labels = { app: "model-server" };
    pod.container[1].volume_mount = [{ name: "keyring", mount_path: "/keys", read_only: true }];
    expect(check(other).evaluations).toEqual([]);
  });
});
