/**
 * A container of an agent pod, in the style of cdk8s-plus: restricted security context and pull policy
 * by default, volumes attached through `mount`, and an optional promise that it holds no Secret, which
 * `mount` then enforces when the pod is composed rather than leaving it to review.
 */
import type {
  DeploymentV1SpecTemplateSpecContainer,
  DeploymentV1SpecTemplateSpecContainerEnv,
  DeploymentV1SpecTemplateSpecContainerEnvValueFrom,
  DeploymentV1SpecTemplateSpecContainerLivenessProbe,
  DeploymentV1SpecTemplateSpecContainerPort,
  DeploymentV1SpecTemplateSpecContainerResources,
  DeploymentV1SpecTemplateSpecContainerStartupProbe,
  DeploymentV1SpecTemplateSpecContainerVolumeMount,
} from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";
import { restrictedContainerSecurityContext } from "./security-context.ts";
import type { Volume } from "./volume.ts";

export interface ContainerProps {
  readonly name: string;
  readonly image: string;
  readonly args: readonly string[];
  /** The program run instead of the image's entry point. @default the image's */
  readonly command?: readonly string[];
  /** @default the image's working directory */
  readonly workingDir?: string;
  /** The user it runs as; the security context is the restricted one for this uid. */
  readonly uid: string;
  /**
   * Environment variables in declaration order: a value, or `{ valueFrom }` read from the downward API or
   * a Secret key. Order matters: Kubernetes expands `$(VAR)` only from variables declared before.
   */
  readonly env?: Readonly<Record<string, string | EnvSource>>;
  readonly ports?: readonly DeploymentV1SpecTemplateSpecContainerPort[];
  readonly resources: DeploymentV1SpecTemplateSpecContainerResources;
  readonly livenessProbe?: DeploymentV1SpecTemplateSpecContainerLivenessProbe;
  readonly readinessProbe?: DeploymentV1SpecTemplateSpecContainerLivenessProbe;
  /** Holds the other probes off until it succeeds, for a container that may take long to start. */
  readonly startupProbe?: DeploymentV1SpecTemplateSpecContainerStartupProbe;
  /**
   * The container must never see a Secret (it runs code the platform does not trust, such as stages):
   * mounting a Secret volume into it throws.
   * @default false
   */
  readonly secretFree?: boolean;
}

/** A variable read from elsewhere when the container starts. */
export interface EnvSource {
  readonly valueFrom: DeploymentV1SpecTemplateSpecContainerEnvValueFrom;
}

export interface MountOptions {
  /** @default false; Secret volumes are always mounted read-only whatever this says */
  readonly readOnly?: boolean;
}

export class Container {
  readonly name: string;
  readonly secretFree: boolean;
  private readonly mounts: { readonly volume: Volume; readonly path: string; readonly readOnly: boolean }[] = [];

  constructor(private readonly props: ContainerProps) {
    this.name = props.name;
    this.secretFree = props.secretFree ?? false;
    for (const [variable, value] of Object.entries(props.env ?? {})) {
      const secretRef = typeof value === "string" ? undefined : value.valueFrom.secretKeyRef;
      if (secretRef && this.secretFree) {
        throw new Error(`container '${this.name}' holds no Secret by design: do not read Secret '${secretRef.name}' into ${variable}; read it in the agent's container instead`);
      }
    }
  }

  /** Mounts `volume` at `path`. Secrets go in read-only: keys are read, never written, by workloads. */
  mount(path: string, volume: Volume, options: MountOptions = {}): this {
    if (volume.holdsSecret && this.secretFree) {
      throw new Error(`container '${this.name}' holds no Secret by design: do not mount Secret volume '${volume.name}' into it; mount it into the agent's container instead`);
    }
    this.mounts.push({ volume, path, readOnly: volume.holdsSecret || options.readOnly === true });
    return this;
  }

  /** The volumes it mounts, in mount order: the pod spec declares them in that order. */
  get volumes(): readonly Volume[] {
    return this.mounts.map((m) => m.volume);
  }

  toSpec(): DeploymentV1SpecTemplateSpecContainer {
    const p = this.props;
    const env: DeploymentV1SpecTemplateSpecContainerEnv[] = Object.entries(p.env ?? {}).map(([name, value]) =>
      typeof value === "string" ? { name, value } : { name, valueFrom: value.valueFrom },
    );
    const volumeMount: DeploymentV1SpecTemplateSpecContainerVolumeMount[] = this.mounts.map((m) => ({
      name: m.volume.name,
      mountPath: m.path,
      ...(m.readOnly ? { readOnly: true } : {}),
    }));
    return {
      name: p.name,
      image: p.image,
      imagePullPolicy: "IfNotPresent",
      ...(p.command ? { command: [...p.command] } : {}),
      args: [...p.args],
      ...(p.workingDir !== undefined ? { workingDir: p.workingDir } : {}),
      ...(p.ports ? { port: [...p.ports] } : {}),
      ...(env.length ? { env } : {}),
      securityContext: restrictedContainerSecurityContext(p.uid),
      resources: p.resources,
      ...(p.livenessProbe ? { livenessProbe: p.livenessProbe } : {}),
      ...(p.readinessProbe ? { readinessProbe: p.readinessProbe } : {}),
      ...(p.startupProbe ? { startupProbe: p.startupProbe } : {}),
      volumeMount,
    };
  }
}
