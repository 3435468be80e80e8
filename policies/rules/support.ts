/** Small helpers shared by rule files, so each rule file reads as its check alone. */
import type { PlatformConfig } from "../../runtime/config/schema.ts";
import {
  containersOf,
  joinPath,
  labelsOf,
  namespaceOf,
  podTemplateOf,
  WORKLOAD_KINDS,
  type ContainerRef,
  type PodTemplate,
} from "../kubernetes.ts";
import { notApplicable, type ControlRef, type Outcome, type PlatformConfigSource, type Resource, type RuleContextView } from "../model.ts";

export const workloadKinds: readonly string[] = WORKLOAD_KINDS;

export const controls = {
  baseline: (control: string): ControlRef => ({ pack: "gpu-baseline", control }),
  hipaa: (control: string): ControlRef => ({ pack: "hipaa", control }),
  soc2: (control: string): ControlRef => ({ pack: "soc2", control }),
  gdpr: (control: string): ControlRef => ({ pack: "gdpr-residency", control }),
};

/** Runs `check` on the pod a workload runs; not applicable to anything else. */
export function checkPod(
  resource: Resource,
  context: RuleContextView,
  check: (pod: PodTemplate) => Outcome | readonly Outcome[],
): Outcome | readonly Outcome[] {
  const pod = podTemplateOf(resource, context);
  return pod ? check(pod) : notApplicable;
}

/** Runs `check` on every container (init containers included) of a workload's pod. */
export function checkContainers(
  resource: Resource,
  context: RuleContextView,
  check: (container: ContainerRef, pod: PodTemplate) => Outcome,
): Outcome | readonly Outcome[] {
  return checkPod(resource, context, (pod) => {
    const containers = containersOf(pod);
    return containers.length === 0 ? notApplicable : containers.map((c) => check(c, pod));
  });
}

export function path(...parts: readonly (string | number)[]): string {
  return joinPath(parts);
}

/** Runs `check` on each valid platform config carried by a ConfigMap. */
export function checkConfigs(
  resource: Resource,
  context: RuleContextView,
  check: (config: PlatformConfig, source: PlatformConfigSource) => Outcome | readonly Outcome[],
): Outcome | readonly Outcome[] {
  const sources = context.platformConfigs().filter((s) => s.resource === resource && s.config);
  if (sources.length === 0) return notApplicable;
  return sources.flatMap((s) => {
    const out = check(s.config!, s);
    return Array.isArray(out) ? out : [out as Outcome];
  });
}

/** The platform config of the agent a workload runs, matched by namespace and deployment name. */
export function configForAgent(resource: Resource, context: RuleContextView): PlatformConfig | undefined {
  const ns = namespaceOf(resource, context);
  const instance = labelsOf(resource, context)["app.kubernetes.io/instance"];
  const inNamespace = context
    .platformConfigs()
    .flatMap((s) => (s.config && s.config.deployment.namespace === ns ? [s.config] : []));
  return inNamespace.find((c) => c.deployment.name === instance) ?? (inNamespace.length === 1 ? inNamespace[0] : undefined);
}

export const REGULATED = new Set(["pii", "phi"]);
