import type { DataClassification } from "../../runtime/config/schema.ts";
import { configPath } from "../context.ts";
import { kindOf, labelsOf, LABEL, nameOf, stringMap, get } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { checkConfigs, controls, REGULATED } from "./support.ts";

/** StorageClass parameters by which the common CSI drivers turn on encryption at rest. */
const ENCRYPTION_FLAGS = ["encrypted", "encryption"]; // AWS EBS, Ceph RBD, Longhorn, OpenEBS: "true"
const ENCRYPTION_KEYS = ["kmsKeyId", "kmsKeyID", "disk-encryption-kms-key", "diskEncryptionSetID", "diskEncryptionType", "encryptionKMSID"];

export function storageClassEncrypted(parameters: Record<string, string>): boolean {
  return ENCRYPTION_FLAGS.some((k) => parameters[k]?.toLowerCase() === "true") || ENCRYPTION_KEYS.some((k) => (parameters[k] ?? "") !== "");
}

export const regulatedStorageEncrypted: Rule = {
  id: "GF-STO-001",
  name: "regulated-storage-encrypted",
  level: "error",
  title: "Storage that holds regulated data is encrypted at rest",
  rationale:
    "Model inputs and outputs of pii/phi tenants land on these volumes; disks are replaced, snapshotted and backed up outside the cluster's access controls.",
  remediation:
    "Give the StorageTier `encryption: { parameters: {...} }` with your CSI driver's encryption parameters (e.g. `encrypted: \"true\"` and `kmsKeyId` on EBS, `disk-encryption-kms-key` on GKE, `diskEncryptionSetID` on Azure).",
  controls: [controls.baseline("storage"), controls.hipaa("164.312(a)(2)(iv)"), controls.soc2("CC6.1"), controls.soc2("CC6.7"), controls.gdpr("Art.32")],
  kinds: ["storage_class", "config_map"],
  check(resource, context) {
    if (kindOf(resource.type) === "config_map") {
      return checkConfigs(resource, context, (config, source) => {
        const outcomes: Outcome[] = [];
        config.tiers.forEach((tier, i) => {
          if (!REGULATED.has(tier.dataClassification)) return;
          if (!tier.encrypted) outcomes.push(violation(configPath(source, `tiers[${i}].encrypted`), `tier '${tier.name}' holds ${tier.dataClassification} data unencrypted`));
          else if (!tier.encryptionRequired) outcomes.push(violation(configPath(source, `tiers[${i}].encryptionRequired`), `tier '${tier.name}' holds ${tier.dataClassification} data but does not require encryption`));
        });
        return outcomes.length ? outcomes : compliant;
      });
    }
    const classification = (labelsOf(resource, context)[LABEL.classification] ?? context.defaultClassification) as DataClassification;
    if (!REGULATED.has(classification)) return notApplicable;
    const parameters = stringMap(get(resource.attributes, ["parameters"]), context);
    if (storageClassEncrypted(parameters)) return compliant;
    const name = nameOf(resource, context);
    const declaredEncrypted = context.platformConfigs().some((s) => s.config?.tiers.some((t) => t.storageClassName === name && t.encrypted));
    return declaredEncrypted
      ? compliant
      : violation("parameters", `storage class '${name ?? resource.name}' holds ${classification} data but sets no encryption parameter`);
  },
};
