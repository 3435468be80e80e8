import { Testing } from "cdktf";
import { describe, expect, it } from "vitest";
import { FabricStack } from "../../constructs/fabric-stack.ts";
import { NetworkSegment } from "../../constructs/network-segment.ts";
import { StorageTier, type StorageTierProps } from "../../constructs/storage-tier.ts";
import { ValidationError } from "../../runtime/config/errors.ts";
import { TierSchema } from "../../runtime/config/schema.ts";
import { metadataOf, synth } from "../support/synth.ts";

const SC = "kubernetes_storage_class_v1";
const PVC = "kubernetes_persistent_volume_claim_v1";

function setup() {
  const stack = new FabricStack(Testing.app(), "prod");
  return { stack, studio: new NetworkSegment(stack, "studio"), serving: new NetworkSegment(stack, "serving") };
}

describe("StorageTier", () => {
  it("creates a StorageClass that binds on first consumer, can expand and retains volumes", () => {
    const { stack } = setup();
    const tier = new StorageTier(stack, "hot", { tierClass: "hot", provisioner: "ebs.csi.aws.com", parameters: { type: "gp3", iops: "6000" } });
    const sc = synth(stack).find(SC, "hot");
    expect(sc.config).toMatchObject({
      storage_provisioner: "ebs.csi.aws.com",
      parameters: { type: "gp3", iops: "6000" },
      reclaim_policy: "Retain",
      volume_binding_mode: "WaitForFirstConsumer",
      allow_volume_expansion: true,
    });
    expect(metadataOf(sc).labels).toMatchObject({
      "gpufabric.dev/tier": "hot",
      "gpufabric.dev/tier-class": "hot",
      "gpufabric.dev/data-classification": "internal",
      "gpufabric.dev/encrypted": "false",
      "app.kubernetes.io/component": "storage-class",
    });
    expect(tier.storageClassName).toBe("hot");
    expect(tier.mountPath).toBe("/var/lib/gpufabric/tiers/hot");
    expect(tier.encrypted).toBe(false);
  });

  it("merges encryption parameters into the StorageClass and marks the tier encrypted", () => {
    const { stack } = setup();
    const tier = new StorageTier(stack, "secure", {
      tierClass: "warm",
      provisioner: "ebs.csi.aws.com",
      parameters: { type: "gp3" },
      encryption: { parameters: { encrypted: "true", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abcd" } },
      reclaimPolicy: "Delete",
      dataClassification: "pii",
    });
    const sc = synth(stack).find(SC, "secure");
    expect(sc.config.parameters).toEqual({ type: "gp3", encrypted: "true", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:key/abcd" });
    expect(sc.config.reclaim_policy).toBe("Delete");
    expect(metadataOf(sc).labels).toMatchObject({ "gpufabric.dev/encrypted": "true", "gpufabric.dev/data-classification": "pii" });
    expect(tier.encrypted).toBe(true);
    expect(tier.toConfig()).toMatchObject({ encrypted: true, encryptionRequired: true, dataClassification: "pii" });
  });

  it("requires encryption for confidential, pii and phi data even when the class does not encrypt", () => {
    const { stack } = setup();
    const tier = new StorageTier(stack, "plain", { tierClass: "cold", provisioner: "nfs.csi.k8s.io", dataClassification: "phi" });
    expect(tier.toConfig()).toMatchObject({ encrypted: false, encryptionRequired: true });
    const open = new StorageTier(stack, "open", { tierClass: "cold", provisioner: "nfs.csi.k8s.io", dataClassification: "public" });
    expect(open.toConfig().encryptionRequired).toBe(false);
  });

  it("creates the models and artifacts claims once per segment, in the segment's namespace", () => {
    const { stack, studio, serving } = setup();
    const tier = new StorageTier(stack, "hot", { tierClass: "hot", provisioner: "ebs.csi.aws.com", modelsSize: "500Gi", artifactsSize: "2Ti", accessModes: ["ReadWriteOncePod"] });
    expect(tier.claimsFor(studio)).toEqual({ models: "hot-models", artifacts: "hot-artifacts" });
    expect(tier.claimsFor(studio)).toEqual({ models: "hot-models", artifacts: "hot-artifacts" });
    tier.claimsFor(serving);
    const out = synth(stack);
    expect(out.resources(PVC).map((r) => `${metadataOf(r).namespace}/${metadataOf(r).name}`).sort()).toEqual([
      "serving/hot-artifacts",
      "serving/hot-models",
      "studio/hot-artifacts",
      "studio/hot-models",
    ]);
    const models = out.find(PVC, "hot-models", "studio").config;
    expect(models.spec).toEqual({ storage_class_name: "hot", access_modes: ["ReadWriteOncePod"], resources: { requests: { storage: "500Gi" } } });
    // WaitForFirstConsumer never binds without a pod: apply must not wait for it.
    expect(models.wait_until_bound).toBe(false);
    expect(models.depends_on).toEqual([expect.stringMatching(/^kubernetes_namespace_v1\.studio_namespace/), expect.stringMatching(/^kubernetes_storage_class_v1\.hot_storage-class/)]);
    expect(metadataOf(out.find(PVC, "hot-artifacts", "serving")).labels).toMatchObject({ "gpufabric.dev/segment": "serving", "gpufabric.dev/tier": "hot" });
    expect(out.find(PVC, "hot-artifacts", "serving").config.spec.resources.requests.storage).toBe("2Ti");
  });

  it("defaults claim sizes and access mode", () => {
    const { stack, studio } = setup();
    new StorageTier(stack, "warm", { tierClass: "warm", provisioner: "pd.csi.storage.gke.io" }).claimsFor(studio);
    const out = synth(stack);
    expect(out.find(PVC, "warm-models", "studio").config.spec).toMatchObject({ access_modes: ["ReadWriteOnce"], resources: { requests: { storage: "200Gi" } } });
    expect(out.find(PVC, "warm-artifacts", "studio").config.spec.resources.requests.storage).toBe("1Ti");
  });

  it("serializes into the platform config's tier schema", () => {
    const { stack } = setup();
    const tier = new StorageTier(stack, "Cold", { tierClass: "cold", provisioner: "s3.csi.aws.com", retentionDays: 30, mountPath: "/data/cold" });
    expect(tier.toConfig()).toEqual({
      name: "cold",
      class: "cold",
      storageClassName: "cold",
      mountPath: "/data/cold",
      retentionDays: 30,
      encrypted: false,
      encryptionRequired: false,
      dataClassification: "internal",
    });
    expect(TierSchema.parse(tier.toConfig())).toEqual(tier.toConfig());
    expect(new StorageTier(stack, "keep", { tierClass: "hot", provisioner: "x.csi.io" }).toConfig().retentionDays).toBeNull();
  });

  describe("rejects bad props with a fix-it message", () => {
    const base: StorageTierProps = { tierClass: "hot", provisioner: "ebs.csi.aws.com" };
    const cases: [string, Partial<StorageTierProps>, RegExp][] = [
      ["name", { name: "Hot" }, /name: "Hot" is not a DNS-1123 label/],
      ["tierClass", { tierClass: "lukewarm" as never }, /tierClass: "lukewarm" is not allowed: use one of 'hot', 'warm', 'cold'/],
      ["provisioner", { provisioner: "" }, /provisioner: "" is not a provisioner name: give the CSI driver name, e.g. 'ebs.csi.aws.com'/],
      ["parameter value", { parameters: { iops: 3000 as never } }, /parameters\["iops"\]: 3000 is not a string: StorageClass parameters are strings/],
      ["empty encryption", { encryption: { parameters: {} } }, /encryption.parameters: is empty: give the provisioner's encryption parameters/],
      ["conflicting encryption", { parameters: { encrypted: "false" }, encryption: { parameters: { encrypted: "true" } } }, /encryption.parameters\["encrypted"\]: 'true' conflicts with parameters\["encrypted"\] = 'false'/],
      ["reclaimPolicy", { reclaimPolicy: "Recycle" as never }, /reclaimPolicy: "Recycle" is not allowed: use one of 'Retain', 'Delete'/],
      ["modelsSize", { modelsSize: "200GB" }, /modelsSize: '200GB' is not a quantity \(did you mean '200Gi'\?\)/],
      ["artifactsSize zero", { artifactsSize: "0" }, /artifactsSize: '0' is less than 1Mi/],
      ["negative size", { modelsSize: "-1Gi" }, /modelsSize: '-1Gi' is negative/],
      ["accessModes empty", { accessModes: [] }, /accessModes: is empty: give at least one of ReadWriteOnce/],
      ["accessModes unknown", { accessModes: ["ReadWriteSometimes" as never] }, /accessModes\[0\]: "ReadWriteSometimes" is not allowed/],
      ["retentionDays", { retentionDays: 0 }, /retentionDays: 0 is not a positive integer/],
      ["dataClassification", { dataClassification: "top-secret" as never }, /dataClassification: "top-secret" is not allowed/],
      ["relative mountPath", { mountPath: "data/hot" }, /mountPath: "data\/hot" is not a normalized absolute path/],
      ["mountPath with ..", { mountPath: "/data/../etc" }, /mountPath: "\/data\/..\/etc" is not a normalized absolute path/],
    ];
    it.each(cases)("%s", (_name, props, message) => {
      const create = () => new StorageTier(setup().stack, "hot", { ...base, ...props });
      expect(create).toThrow(ValidationError);
      expect(create).toThrow(message);
    });

    it("a second tier with the same name", () => {
      const { stack } = setup();
      new StorageTier(stack, "hot", base);
      expect(() => new StorageTier(stack, "hot2", { ...base, name: "hot" })).toThrow(/tier 'hot' is already declared by 'prod\/hot' in this stack/);
    });

    it("claims for a segment of another stack", () => {
      const { stack } = setup();
      const tier = new StorageTier(stack, "hot", base);
      const elsewhere = new NetworkSegment(new FabricStack(Testing.app(), "dr"), "studio");
      expect(() => tier.claimsFor(elsewhere)).toThrow(/segment 'dr\/studio' belongs to stack 'dr', not 'prod'/);
    });
  });
});
