import { describe, expect, it } from "vitest";
import { RuleContext } from "../../policies/context.ts";
import { podTemplateOf } from "../../policies/kubernetes.ts";
import { ruleById, resourcesFromTerraformJson, runChecks } from "../../policies/index.ts";
import { locateResources } from "../../policies/terraform.ts";
import { ValidationError } from "../../runtime/config/errors.ts";

const deploymentBody = {
  metadata: { name: "web", namespace: "apps" },
  spec: { template: { metadata: { labels: { app: "web" } }, spec: { container: { name: "web", image: "web:1.0" } } } },
};

/** The same deployment with every nested block written as a one-element array, as HCL-to-JSON converters do. */
const arrayForm = {
  metadata: [{ name: "web", namespace: "apps" }],
  spec: [{ template: [{ metadata: [{ labels: { app: "web" } }], spec: [{ container: [{ name: "web", image: "web:1.0" }] }] }] }],
};

describe("reading Terraform JSON", () => {
  it("normalizes object and array forms of blocks to the same shape", () => {
    const [fromObjects] = resourcesFromTerraformJson({ resource: { kubernetes_deployment_v1: { web: deploymentBody } } });
    const [fromArrays] = resourcesFromTerraformJson({ resource: [{ kubernetes_deployment_v1: [{ web: [arrayForm] }] }] });
    expect(fromArrays!.attributes).toEqual(fromObjects!.attributes);
    // `container` is a list block: one written as an object becomes a one-element list.
    expect(fromObjects!.attributes).toMatchObject({ spec: { template: { spec: { container: [{ name: "web" }] } } } });
    const context = new RuleContext([fromArrays!]);
    expect(podTemplateOf(fromArrays!, context)?.labels).toEqual({ app: "web" });
  });

  it("keeps addresses, construct paths and acknowledgements from cdktf metadata, and skips comment keys", () => {
    const resources = resourcesFromTerraformJson(
      {
        "//": "generated",
        resource: {
          "//": "comment",
          kubernetes_deployment_v1: {
            web: {
              ...deploymentBody,
              "//": { metadata: { path: "s/Web/Deployment", uniqueId: "web" }, gpufabric: { acknowledgements: [{ ruleId: "GF-POD-010", reason: "pinned by the release tooling" }] } },
            },
          },
          aws_s3_bucket: { logs: { bucket: "logs" } },
        },
      },
      "stacks/s/cdk.tf.json",
    );
    expect(resources.map((r) => r.address)).toEqual(["kubernetes_deployment_v1.web", "aws_s3_bucket.logs"]);
    expect(resources[0]).toMatchObject({ constructPath: "s/Web/Deployment", file: "stacks/s/cdk.tf.json" });
    expect(resources[0]!.acknowledgements).toEqual([{ ruleId: "GF-POD-010", reason: "pinned by the release tooling", source: "s/Web/Deployment" }]);
    expect(resources[0]!.attributes).not.toHaveProperty("//");
  });

  it("ignores resources of other providers", () => {
    const report = runChecks(resourcesFromTerraformJson({ resource: { aws_s3_bucket: { logs: { bucket: "logs" } } } }), { packs: ["gpu-baseline"] });
    expect(report.resourceCount).toBe(1);
    expect(report.evaluations).toEqual([]);
  });

  it("names the field at fault in malformed input", () => {
    expect(() => resourcesFromTerraformJson([], "x.tf.json")).toThrow(ValidationError);
    expect(() => resourcesFromTerraformJson({ resource: { kubernetes_namespace_v1: { a: "nope" } } }, "x.tf.json")).toThrow(/resource\.kubernetes_namespace_v1\.a: must be an object/);
    expect(() =>
      resourcesFromTerraformJson({ resource: { kubernetes_namespace_v1: { a: { "//": { gpufabric: { acknowledgements: [{ ruleId: "GF-NET-001", reason: "short" }] } } } } } }),
    ).toThrow(/acknowledgements\[0\]\.reason: must explain the acknowledgement in at least 10 characters/);
  });

  it("resolves references to other resources' attributes", () => {
    const resources = resourcesFromTerraformJson({
      resource: {
        kubernetes_namespace_v1: { ns: { metadata: [{ name: "apps" }] } },
        kubernetes_network_policy_v1: { deny: { metadata: { name: "deny", namespace: "${kubernetes_namespace_v1.ns.metadata.0.name}" }, spec: { pod_selector: {}, policy_types: ["Ingress", "Egress"] } } },
      },
    });
    const report = runChecks(resources, { packs: ["gpu-baseline"], rules: [ruleById("GF-NET-001")!, ruleById("GF-NET-002")!] });
    expect(report.findings).toEqual([]);
    expect(report.evaluations).toHaveLength(2);
  });
});

describe("Terraform's string booleans", () => {
  it("are read as booleans, as Terraform converts them", () => {
    const pod = (value: unknown) =>
      resourcesFromTerraformJson({
        resource: { kubernetes_pod_v1: { p: { metadata: { name: "p" }, spec: { container: { name: "c", image: "c:1", security_context: { read_only_root_filesystem: value, privileged: value } } } } } },
      });
    const rules = [ruleById("GF-POD-002")!, ruleById("GF-POD-006")!];
    expect(runChecks(pod("true"), { packs: ["gpu-baseline"], rules }).findings.map((f) => f.ruleId)).toEqual(["GF-POD-006"]);
    expect(runChecks(pod("false"), { packs: ["gpu-baseline"], rules }).findings.map((f) => f.ruleId)).toEqual(["GF-POD-002"]);
  });
});

describe("locating resources in the file text", () => {
  it("finds each resource block's line, past keys of the same name inside earlier blocks", () => {
    const doc = {
      resource: {
        kubernetes_namespace_v1: { a: { metadata: { name: "a", labels: { b: "x" } } }, b: { metadata: { name: "b" } } },
        kubernetes_config_map_v1: { a: { metadata: { name: "a" } } },
      },
    };
    const text = JSON.stringify(doc, null, 2);
    const lines = locateResources(text, resourcesFromTerraformJson(doc));
    const all = text.split("\n");
    const blockLines = (key: string) => all.flatMap((l, i) => (l.trim() === `"${key}": {` ? [i + 1] : []));
    expect(lines).toEqual([blockLines("a")[0], blockLines("b")[0], blockLines("a")[1]]);
    expect(lines.every((l) => typeof l === "number")).toBe(true);
  });
});

describe("GF-GEO-002 on storage classes without zone topology", () => {
  const storageClass = (bindingMode: string) =>
    resourcesFromTerraformJson({
      resource: {
        kubernetes_storage_class_v1: {
          phi: { metadata: { name: "phi", labels: { "gpufabric.dev/data-classification": "phi" } }, storage_provisioner: "ebs.csi.aws.com", volume_binding_mode: bindingMode },
        },
      },
    });
  const residency = { allowedRegions: {}, allowedZones: { phi: ["eu-west-1a"] } };

  it("accepts WaitForFirstConsumer, where volumes follow the consuming pod's node", () => {
    expect(runChecks(storageClass("WaitForFirstConsumer"), { packs: ["gdpr-residency"], rules: [ruleById("GF-GEO-002")!], residency }).findings).toEqual([]);
  });

  it("flags Immediate binding, which may provision in any zone", () => {
    const report = runChecks(storageClass("Immediate"), { packs: ["gdpr-residency"], rules: [ruleById("GF-GEO-002")!], residency });
    expect(report.findings.map((f) => f.attributePath)).toEqual(["allowed_topologies"]);
  });
});
