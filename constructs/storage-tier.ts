import { PersistentVolumeClaimV1 } from "@cdktf/provider-kubernetes/lib/persistent-volume-claim-v1/index.js";
import { StorageClassV1 } from "@cdktf/provider-kubernetes/lib/storage-class-v1/index.js";
import { Construct } from "constructs";
import { posix } from "node:path";
import { DataClassificationSchema, type DataClassification, type TierConfig } from "../runtime/config/schema.ts";
import { tryParseQuantityMiB } from "../runtime/graph/quantity.ts";
import { FabricStack, requireSameStack } from "./fabric-stack.ts";
import { NetworkSegment } from "./network-segment.ts";
import { PropIssues, checkedProps } from "./validation.ts";

export type TierClass = "hot" | "warm" | "cold";
export type AccessMode = "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod";
const ACCESS_MODES: readonly AccessMode[] = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"];

export interface TierEncryption {
  /** StorageClass parameters that turn on encryption at rest for the provisioner, e.g. `{ encrypted: "true", kmsKeyId: "…" }`. */
  readonly parameters: Readonly<Record<string, string>>;
}

export interface StorageTierProps {
  /**
   * Name of the tier and its StorageClass (a DNS-1123 label).
   * @default the construct id, lower-cased
   */
  readonly name?: string;
  readonly tierClass: TierClass;
  /** The CSI driver (or in-tree provisioner) that provisions the volumes, e.g. `ebs.csi.aws.com`. */
  readonly provisioner: string;
  /**
   * Provisioner parameters of the StorageClass.
   * @default {}
   */
  readonly parameters?: Readonly<Record<string, string>>;
  /**
   * Encryption at rest: its parameters are merged into the StorageClass parameters.
   * @default not encrypted by the storage layer
   */
  readonly encryption?: TierEncryption;
  /**
   * What happens to a volume when its claim is deleted.
   * @default "Retain"
   */
  readonly reclaimPolicy?: "Retain" | "Delete";
  /**
   * Size of the models claim per segment (a Kubernetes quantity).
   * @default "200Gi"
   */
  readonly modelsSize?: string;
  /**
   * Size of the artifacts claim per segment (a Kubernetes quantity).
   * @default "1Ti"
   */
  readonly artifactsSize?: string;
  /**
   * Access modes of the claims.
   * @default ["ReadWriteOnce"]
   */
  readonly accessModes?: readonly AccessMode[];
  /**
   * Days after which the agent deletes artifacts on this tier.
   * @default none: artifacts are kept
   */
  readonly retentionDays?: number;
  /**
   * The most sensitive data the tier may hold.
   * @default "internal"
   */
  readonly dataClassification?: DataClassification;
  /**
   * Where the agent mounts the tier.
   * @default `/var/lib/gpufabric/tiers/<name>`
   */
  readonly mountPath?: string;
}

/** Classifications whose data must sit on storage encrypted at rest. */
const ENCRYPTION_REQUIRED: readonly DataClassification[] = ["confidential", "pii", "phi"];

/**
 * A class of storage (hot, warm, cold): a StorageClass that binds where the consuming pod lands and can
 * grow, and per-segment claims for models and artifacts.
 */
export class StorageTier extends Construct {
  readonly name: string;
  readonly tierClass: TierClass;
  readonly storageClassName: string;
  readonly mountPath: string;
  /** Whether the StorageClass encrypts volumes at rest. */
  readonly encrypted: boolean;
  readonly reclaimPolicy: "Retain" | "Delete";
  readonly retentionDays: number | undefined;
  readonly dataClassification: DataClassification;
  readonly modelsSize: string;
  readonly artifactsSize: string;
  readonly accessModes: readonly AccessMode[];
  readonly storageClass: StorageClassV1;
  private readonly claims = new Map<NetworkSegment, { models: string; artifacts: string }>();

  constructor(scope: Construct, id: string, props: StorageTierProps) {
    super(scope, id);
    const { stack, name, reclaimPolicy, modelsSize, artifactsSize, accessModes, dataClassification, mountPath } = checkedProps(this, () => {
      const stack = FabricStack.of(this);
      const name = props?.name ?? id.toLowerCase();
      const issues = new PropIssues(`StorageTier '${name}'`);
      // Claims are named `<name>-artifacts`, which must stay a label value.
      issues.dnsLabel(props?.name === undefined ? "name (defaults to the id, lower-cased)" : "name", name, 63 - "-artifacts".length);
      issues.oneOf("tierClass", props?.tierClass, ["hot", "warm", "cold"] as const);
      if (typeof props?.provisioner !== "string" || !/^[a-z0-9]([-a-z0-9./]*[a-z0-9])?$/.test(props.provisioner) || props.provisioner.length > 253) {
        issues.add("provisioner", `${JSON.stringify(props?.provisioner)} is not a provisioner name: give the CSI driver name, e.g. 'ebs.csi.aws.com' or 'pd.csi.storage.gke.io'`);
      }
      checkParameters(issues, "parameters", props?.parameters);
      if (props?.encryption !== undefined) {
        const encryption = props.encryption.parameters;
        if (!encryption || Object.keys(encryption).length === 0) {
          issues.add("encryption.parameters", "is empty: give the provisioner's encryption parameters, e.g. { encrypted: \"true\" }, or leave encryption out");
        }
        checkParameters(issues, "encryption.parameters", encryption);
        for (const [key, value] of Object.entries(encryption ?? {})) {
          const plain = props.parameters?.[key];
          if (plain !== undefined && plain !== value) {
            issues.add(`encryption.parameters[${JSON.stringify(key)}]`, `'${value}' conflicts with parameters[${JSON.stringify(key)}] = '${plain}': set the key in one place only`);
          }
        }
      }
      const reclaimPolicy = props?.reclaimPolicy ?? "Retain";
      issues.oneOf("reclaimPolicy", reclaimPolicy, ["Retain", "Delete"] as const);
      const modelsSize = props?.modelsSize ?? "200Gi";
      const artifactsSize = props?.artifactsSize ?? "1Ti";
      checkSize(issues, "modelsSize", modelsSize);
      checkSize(issues, "artifactsSize", artifactsSize);
      const accessModes = props?.accessModes ?? ["ReadWriteOnce"];
      if (!Array.isArray(accessModes) || accessModes.length === 0) issues.add("accessModes", `is empty: give at least one of ${ACCESS_MODES.join(", ")}`);
      else {
        accessModes.forEach((mode, i) => issues.oneOf(`accessModes[${i}]`, mode, ACCESS_MODES));
        if (new Set(accessModes).size !== accessModes.length) issues.add("accessModes", "lists a mode twice: list each mode once");
      }
      if (props?.retentionDays !== undefined) issues.positiveInt("retentionDays", props.retentionDays);
      const dataClassification = props?.dataClassification ?? "internal";
      issues.oneOf("dataClassification", dataClassification, DataClassificationSchema.options);
      const mountPath = props?.mountPath ?? `/var/lib/gpufabric/tiers/${name}`;
      if (typeof mountPath !== "string" || !mountPath.startsWith("/") || posix.normalize(mountPath) !== mountPath || mountPath === "/" || mountPath.endsWith("/")) {
        issues.add("mountPath", `${JSON.stringify(mountPath)} is not a normalized absolute path: write e.g. '/var/lib/gpufabric/tiers/${name}' (no '..', '//' or trailing '/')`);
      }
      issues.throwIfAny();
      stack.claimName("tier", name, this);
      return { stack, name, reclaimPolicy, modelsSize, artifactsSize, accessModes, dataClassification, mountPath };
    });

    this.name = name;
    this.tierClass = props.tierClass;
    this.storageClassName = name;
    this.mountPath = mountPath;
    this.encrypted = props.encryption !== undefined;
    this.reclaimPolicy = reclaimPolicy;
    this.retentionDays = props.retentionDays;
    this.dataClassification = dataClassification;
    this.modelsSize = modelsSize;
    this.artifactsSize = artifactsSize;
    this.accessModes = [...accessModes];

    this.storageClass = new StorageClassV1(this, "storage-class", {
      metadata: { name: this.storageClassName, labels: this.labels(stack, "storage-class", this.storageClassName) },
      storageProvisioner: props.provisioner,
      parameters: { ...props.parameters, ...props.encryption?.parameters },
      reclaimPolicy,
      // Bind where the pod lands, so the volume is created in the GPU node's zone.
      volumeBindingMode: "WaitForFirstConsumer",
      allowVolumeExpansion: true,
    });
  }

  /** Whether data on the tier must be encrypted at rest (the agent refuses to write to an unencrypted one). */
  get encryptionRequired(): boolean {
    return this.encrypted || ENCRYPTION_REQUIRED.includes(this.dataClassification);
  }

  /**
   * The models and artifacts claims of this tier in `segment`'s namespace, created on first use.
   * @returns the claims' names.
   */
  claimsFor(segment: NetworkSegment): { models: string; artifacts: string } {
    if (!(segment instanceof NetworkSegment)) {
      const issues = new PropIssues(`StorageTier '${this.name}'.claimsFor(segment)`);
      issues.add("segment", "is not a NetworkSegment: pass the segment whose workloads use the tier");
      issues.throwIfAny();
    }
    requireSameStack(this, segment, "segment", "segment");
    const existing = this.claims.get(segment);
    if (existing) return { ...existing };
    const stack = FabricStack.of(this);
    const names = { models: `${this.name}-models`, artifacts: `${this.name}-artifacts` };
    for (const [kind, size] of [
      ["models", this.modelsSize],
      ["artifacts", this.artifactsSize],
    ] as const) {
      new PersistentVolumeClaimV1(this, `${segment.name}-${kind}`, {
        metadata: {
          name: names[kind],
          namespace: segment.namespace,
          labels: { ...this.labels(stack, `${kind}-volume`, names[kind]), "gpufabric.dev/segment": segment.name },
        },
        spec: {
          storageClassName: this.storageClassName,
          accessModes: [...this.accessModes],
          resources: { requests: { storage: size } },
        },
        // WaitForFirstConsumer: the claim binds only once a pod uses it, so apply must not wait for it.
        waitUntilBound: false,
        dependsOn: [segment.namespaceResource, this.storageClass],
      });
    }
    this.claims.set(segment, names);
    return { ...names };
  }

  /** The tier as the platform config records it. */
  toConfig(): TierConfig {
    return {
      name: this.name,
      class: this.tierClass,
      storageClassName: this.storageClassName,
      mountPath: this.mountPath,
      retentionDays: this.retentionDays ?? null,
      encrypted: this.encrypted,
      encryptionRequired: this.encryptionRequired,
      dataClassification: this.dataClassification,
    };
  }

  private labels(stack: FabricStack, component: string, instance: string): Record<string, string> {
    return {
      ...stack.labelsFor(component, instance),
      "gpufabric.dev/tier": this.name,
      "gpufabric.dev/tier-class": this.tierClass,
      "gpufabric.dev/data-classification": this.dataClassification,
      "gpufabric.dev/encrypted": String(this.encrypted),
    };
  }
}

function checkParameters(issues: PropIssues, field: string, parameters: Readonly<Record<string, string>> | undefined): void {
  for (const [key, value] of Object.entries(parameters ?? {})) {
    if (key.trim() === "") issues.add(field, "has an empty key: name every parameter");
    if (typeof value !== "string") issues.add(`${field}[${JSON.stringify(key)}]`, `${JSON.stringify(value)} is not a string: StorageClass parameters are strings, write e.g. "true" or "3000"`);
  }
}

function checkSize(issues: PropIssues, field: string, size: unknown): void {
  if (typeof size !== "string") {
    issues.add(field, `${JSON.stringify(size)} is not a quantity: write a string such as '200Gi'`);
    return;
  }
  const result = tryParseQuantityMiB(size);
  if (!result.ok) issues.add(field, result.message);
  else if (result.mib < 1) issues.add(field, `'${size}' is less than 1Mi: give the claim a real size, e.g. '200Gi'`);
}
