/**
 * A pod volume, in the style of cdk8s-plus: made by a factory that sets the secure defaults, mounted by
 * containers (`Container.mount`), and added to the pod by the pod spec when a container mounts it.
 */
import type { DeploymentV1SpecTemplateSpecVolume } from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";

export interface EmptyDirOptions {
  /** "Memory" keeps the contents off the node's disks (tmpfs). */
  readonly medium?: "Memory";
  readonly sizeLimit: string;
}

export interface SecretVolumeOptions {
  /**
   * Only these keys of the Secret, each at a path of its own (e.g. a CA certificate without the key
   * stored beside it).
   * @default every key, under its own name
   */
  readonly items?: readonly { readonly key: string; readonly path: string }[];
}

export class Volume {
  /**
   * A Secret, required (the pod does not start without it). Mode 0440: with the pod's fsGroup the kubelet
   * makes Secret files root-owned and group-readable anyway (0400 would be widened); the non-root user
   * reads them through that group, nobody else can.
   */
  static fromSecret(name: string, secretName: string, options: SecretVolumeOptions = {}): Volume {
    const items = options.items ? { items: options.items.map((i) => ({ key: i.key, path: i.path })) } : {};
    return new Volume(name, { name, secret: { secretName, defaultMode: "0440", optional: false, ...items } }, true);
  }

  /** A ConfigMap, world-readable inside the pod: it holds no secret by construction. */
  static fromConfigMap(name: string, configMapName: string): Volume {
    return new Volume(name, { name, configMap: { name: configMapName, defaultMode: "0444" } }, false);
  }

  static fromPersistentVolumeClaim(name: string, claimName: string): Volume {
    return new Volume(name, { name, persistentVolumeClaim: { claimName } }, false);
  }

  static fromEmptyDir(name: string, options: EmptyDirOptions): Volume {
    return new Volume(name, { name, emptyDir: { ...(options.medium ? { medium: options.medium } : {}), sizeLimit: options.sizeLimit } }, false);
  }

  private constructor(
    readonly name: string,
    private readonly spec: DeploymentV1SpecTemplateSpecVolume,
    /** Whether it carries a Secret: containers that must hold none refuse to mount it. */
    readonly holdsSecret: boolean,
  ) {}

  toSpec(): DeploymentV1SpecTemplateSpecVolume {
    return this.spec;
  }
}
