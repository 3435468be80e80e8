import { Testing, TerraformStack } from "cdktf";
import { Construct } from "constructs";
import { describe, expect, it } from "vitest";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { NetworkSegment } from "../../constructs/network-segment.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { fullSynth, metadataOf, synth } from "../support/synth.ts";

describe("FabricStack", () => {
  it("configures the kubernetes provider from ~/.kube/config by default", () => {
    const stack = new FabricStack(Testing.app(), "prod");
    new NetworkSegment(stack, "studio");
    const out = synth(stack);
    expect(out.providers()).toEqual([{ config_path: "~/.kube/config" }]);
  });

  it("passes kubeconfig path and context to the provider", () => {
    const stack = new FabricStack(Testing.app(), "prod", { kubeconfigPath: "/etc/kube/prod.yaml", kubeconfigContext: "prod-admin" });
    new NetworkSegment(stack, "studio");
    expect(synth(stack).providers()).toEqual([{ config_path: "/etc/kube/prod.yaml", config_context: "prod-admin" }]);
  });

  it("configures no kubeconfig in cluster, so the provider uses the pod's service account", () => {
    const stack = new FabricStack(Testing.app(), "prod", { inCluster: true });
    new NetworkSegment(stack, "studio");
    const [provider] = synth(stack).providers();
    expect(provider).toBeDefined();
    expect(provider.config_path).toBeUndefined();
    expect(provider.config_context).toBeUndefined();
  });

  it("labels objects with the common labels, region and extra labels", () => {
    const stack = new FabricStack(Testing.app(), "eu", { platformName: "acme-gpu", region: "eu-west-1", zones: ["eu-west-1a"], labels: { team: "ml-platform" } });
    expect(stack.platformName).toBe("acme-gpu");
    expect(stack.region).toBe("eu-west-1");
    expect(stack.zones).toEqual(["eu-west-1a"]);
    expect(stack.labelsFor("pool", "batch")).toEqual({
      team: "ml-platform",
      "app.kubernetes.io/part-of": "gpufabric",
      "app.kubernetes.io/managed-by": "cdktf",
      "gpufabric.dev/platform": "acme-gpu",
      "gpufabric.dev/region": "eu-west-1",
      "app.kubernetes.io/name": "gpufabric-pool",
      "app.kubernetes.io/instance": "batch",
      "app.kubernetes.io/component": "pool",
    });
    new NetworkSegment(stack, "studio");
    const [ns] = synth(stack).resources("kubernetes_namespace_v1");
    expect(metadataOf(ns!).labels).toMatchObject({ team: "ml-platform", "gpufabric.dev/platform": "acme-gpu", "gpufabric.dev/region": "eu-west-1" });
  });

  it("refuses labels that Kubernetes would reject", () => {
    const stack = new FabricStack(Testing.app(), "lab");
    expect(() => stack.labelsFor("agent", "x".repeat(64))).toThrow(/instance: "x{64}" is not a label value/);
    expect(() => stack.labelsFor("", "a")).toThrow(/component: "" is not usable in a label value/);
  });

  it("defaults the platform name to the stack id and omits the region label without a region", () => {
    const stack = new FabricStack(Testing.app(), "lab");
    expect(stack.platformName).toBe("lab");
    expect(stack.region).toBeUndefined();
    expect(stack.zones).toEqual([]);
    expect(stack.commonLabels).not.toHaveProperty("gpufabric.dev/region");
  });

  it("finds the stack of a nested construct and refuses constructs outside one", () => {
    const app = Testing.app();
    const stack = new FabricStack(app, "prod");
    const nested = new Construct(new Construct(stack, "group"), "inner");
    expect(FabricStack.of(nested)).toBe(stack);
    const plain = new TerraformStack(app, "plain");
    expect(() => FabricStack.of(plain)).toThrow(/is not inside a FabricStack/);
    expect(() => new NetworkSegment(plain, "studio")).toThrow(/is not inside a FabricStack: declare it with a FabricStack/);
  });

  it("keeps two stacks of one app apart (two clusters)", () => {
    const app = Testing.app();
    const eu = new FabricStack(app, "eu", { region: "eu-west-1" });
    const us = new FabricStack(app, "us", { region: "us-east-1" });
    // Same segment name in two clusters is fine.
    new NetworkSegment(eu, "studio");
    new NetworkSegment(us, "studio");
    expect(synth(eu).names("kubernetes_namespace_v1")).toEqual(["studio"]);
    expect(synth(us).names("kubernetes_namespace_v1")).toEqual(["studio"]);
  });

  it("writes each stack of an app to its own cdk.tf.json", () => {
    const app = Testing.app();
    const eu = new FabricStack(app, "eu", { kubeconfigContext: "eu-admin" });
    const us = new FabricStack(app, "us", { kubeconfigContext: "us-admin" });
    new NetworkSegment(eu, "studio");
    new NetworkSegment(us, "serving");
    const written = fullSynth(us);
    expect(written.names("kubernetes_namespace_v1")).toEqual(["serving"]);
    expect(written.providers()).toEqual([{ config_path: "~/.kube/config", config_context: "us-admin" }]);
    expect(fullSynth(eu).names("kubernetes_namespace_v1")).toEqual(["studio"]);
  });

  describe("rejects bad props with a fix-it message", () => {
    const cases: [string, ConstructorParameters<typeof FabricStack>[2], RegExp][] = [
      ["platformName", { platformName: "Acme_GPU" }, /platformName: "Acme_GPU" is not a DNS-1123 label: .*e\.g\. 'acme-gpu'/],
      ["inCluster with kubeconfigPath", { inCluster: true, kubeconfigPath: "~/.kube/config" }, /kubeconfigPath: cannot be set together with inCluster: true/],
      ["inCluster with context", { inCluster: true, kubeconfigContext: "x" }, /kubeconfigContext: cannot be set together with inCluster/],
      ["empty kubeconfigPath", { kubeconfigPath: " " }, /kubeconfigPath: is empty/],
      ["region", { region: "eu west 1" }, /region: "eu west 1" is not usable as a label value/],
      ["zone", { zones: ["ok-1a", ""] }, /zones\[1\]: "" is not a zone name/],
      ["reserved label", { labels: { "app.kubernetes.io/part-of": "x" } }, /labels\["app.kubernetes.io\/part-of"\]: 'app.kubernetes.io\/part-of' is set by gpufabric itself/],
      ["bad label value", { labels: { team: "has space" } }, /labels\["team"\]: "has space" is not a Kubernetes label value/],
      ["bad label key", { labels: { "bad key": "x" } }, /labels\["bad key"\]: 'bad key' is not a Kubernetes label key/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      const create = () => new FabricStack(Testing.app(), "prod", props);
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(message);
    });

    it("defaults the platform name to an id that must itself be a DNS label", () => {
      expect(() => new FabricStack(Testing.app(), "Prod")).toThrow(/platformName \(defaults to the stack id\): "Prod" is not a DNS-1123 label/);
    });
  });
});
