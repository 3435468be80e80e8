/**
 * The EKS example (examples/eks/main.ts) through the real toolchain, offline: synthesized with the AWS
 * provider set up for no network (dummy credentials and the provider's skip options), then `terraform init`
 * from a filesystem mirror of hashicorp/aws 5.100.0 (the schema @cdktf/provider-aws 20.1 was generated
 * from), `terraform validate` and `terraform plan -refresh=false`, whose JSON plan is checked for what the
 * node groups promise: the NVIDIA AMI, min 0, spot, the GpuPool's labels and taint, the autoscaler's tags.
 *
 * Only the AWS stack goes through terraform: the Kubernetes stack needs the kubernetes provider, which the
 * mirror does not hold, and a cluster to plan against. Its side (the GpuPools' selectors) is asserted here
 * on the synthesized JSON.
 *
 * Where terraform or the mirror is missing the test FAILS, saying which and how to provide it: CI machines
 * have both, and a skip would let the check vanish unnoticed. Set GPUFABRIC_SKIP_TERRAFORM=1 to skip it
 * deliberately (vitest then lists it as skipped). GPUFABRIC_TF_PLUGIN_MIRROR names another mirror folder.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "cdktf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineEksPlatform, type EksExample } from "../../examples/eks/main.ts";

const MIRROR = process.env.GPUFABRIC_TF_PLUGIN_MIRROR ?? "/opt/tf-plugins";
const AWS_PROVIDER_VERSION = "5.100.0";
const SKIP = process.env.GPUFABRIC_SKIP_TERRAFORM === "1";
const TIMEOUT = 300_000;

let dir: string;
let example: EksExample;
let env: NodeJS.ProcessEnv;

function terraform(args: readonly string[], cwd: string): string {
  const result = spawnSync("terraform", args, { cwd, env, encoding: "utf8", timeout: TIMEOUT });
  expect(result.error, `terraform ${args[0]} could not run`).toBeUndefined();
  expect(result.status, `terraform ${args.join(" ")} exited ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`.slice(-6000)).toBe(0);
  return result.stdout;
}

function stackDir(name: string): string {
  return join(dir, "stacks", name);
}

describe.skipIf(SKIP)("the EKS example through terraform, offline", { timeout: TIMEOUT }, () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "gpufabric-eks-"));
    const app = new App({ outdir: dir });
    example = defineEksPlatform(app, {
      aws: {
        region: "eu-central-1",
        accessKey: "AKIAIOSFODNN7EXAMPLE",
        secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        skipCredentialsValidation: true,
        skipRequestingAccountId: true,
        skipMetadataApiCheck: "true",
        skipRegionValidation: true,
      },
    });
    app.synth();
    const cliConfig = join(dir, "terraform.rc");
    // The mirror is the only installation method: terraform never asks a registry, so init works offline.
    writeFileSync(cliConfig, `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(MIRROR)}\n  }\n}\n`);
    env = { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1", AWS_EC2_METADATA_DISABLED: "true", TF_PLUGIN_CACHE_DIR: "" };
  }, TIMEOUT);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("has terraform on the PATH and hashicorp/aws in the plugin mirror", () => {
    const version = spawnSync("terraform", ["version", "-json"], { encoding: "utf8" });
    expect(version.error, "terraform is not on the PATH: install Terraform 1.x (or set GPUFABRIC_SKIP_TERRAFORM=1 to skip this test knowingly)").toBeUndefined();
    const providerDir = join(MIRROR, "registry.terraform.io", "hashicorp", "aws", AWS_PROVIDER_VERSION);
    expect(
      existsSync(providerDir),
      `${providerDir} is missing: put hashicorp/aws ${AWS_PROVIDER_VERSION} in a filesystem mirror (terraform providers mirror <dir>) and point GPUFABRIC_TF_PLUGIN_MIRROR at it`,
    ).toBe(true);
  });

  it("initializes from the mirror, validates and plans the node groups", () => {
    const cwd = stackDir("studio-eks");
    terraform(["init", "-input=false", "-no-color"], cwd);
    const lock = readFileSync(join(cwd, ".terraform.lock.hcl"), "utf8");
    expect(lock).toContain(`provider "registry.terraform.io/hashicorp/aws"`);
    expect(lock).toContain(`version     = "${AWS_PROVIDER_VERSION}"`);

    expect(JSON.parse(terraform(["validate", "-json", "-no-color"], cwd))).toMatchObject({ valid: true, error_count: 0, warning_count: 0 });

    terraform(["plan", "-refresh=false", "-input=false", "-lock=false", "-no-color", "-out=plan.bin"], cwd);
    const plan = JSON.parse(terraform(["show", "-json", "plan.bin"], cwd)) as {
      resource_changes: Array<{ type: string; name: string; change: { actions: string[]; after: Record<string, any> } }>;
    };
    const created = (type: string) => plan.resource_changes.filter((r) => r.type === type && r.change.actions.includes("create")).map((r) => r.change.after);
    const groups = created("aws_eks_node_group");
    expect(groups.map((g) => g.node_group_name).sort()).toEqual(["sketch", "train"]);
    const [sketchPool, trainPool] = ["sketch", "train"].map((name) => example.pools.find((p) => p.name === name)!);
    for (const group of groups) {
      const pool = group.node_group_name === "train" ? trainPool! : sketchPool!;
      expect(group).toMatchObject({ ami_type: "AL2023_x86_64_NVIDIA", taint: [{ key: "nvidia.com/gpu", value: "present", effect: "NO_SCHEDULE" }] });
      expect(group.scaling_config).toEqual([{ min_size: 0, max_size: pool.nodes, desired_size: 0 }]);
      expect(group.labels).toEqual(pool.nodeSelector);
    }
    expect(groups.find((g) => g.node_group_name === "sketch")).toMatchObject({ capacity_type: "SPOT", instance_types: ["g6e.xlarge", "g6e.2xlarge"] });
    expect(groups.find((g) => g.node_group_name === "train")).toMatchObject({ capacity_type: "ON_DEMAND", instance_types: ["p5.48xlarge"] });

    // Four tags per group (the product label, the taint, the GPU resource; the sketch group's device-plugin config label too).
    const tags = created("aws_autoscaling_group_tag").map((t) => `${t.tag[0].key}=${t.tag[0].value}`);
    expect(tags.sort()).toEqual(
      [
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu=present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu=8",
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.product=NVIDIA-L40S-SHARED",
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/device-plugin.config=sketch",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu=present:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu=4",
      ].sort(),
    );
    expect(created("aws_eks_cluster")).toHaveLength(1);
  });

  it("synthesizes the Kubernetes side with the pools the node groups serve", () => {
    const tf = JSON.parse(readFileSync(join(stackDir("studio-gpus"), "cdk.tf.json"), "utf8")) as { resource: Record<string, Record<string, any>> };
    const classes = Object.values(tf.resource.kubernetes_priority_class_v1 ?? {}).map((r) => r.metadata.name);
    expect(classes.sort()).toEqual(["sketch-batch", "sketch-interactive", "train-batch", "train-interactive"]);
    expect(example.pools.map((p) => [p.name, p.model.name, p.gpusPerNode, p.nodes, p.sharing.mode])).toEqual([
      ["train", "H100-80GB", 8, 2, "exclusive"],
      ["sketch", "L40S-48GB", 1, 6, "time-slicing"],
    ]);
  });
});
