/** Shared check of the agent rules: a named Secret or claim must be mounted into the agent pod. */
import type { PlatformConfig } from "../../runtime/config/schema.ts";
import { bool, claimVolumes, isAgentWorkload, mountsOf, podTemplateOf, secretVolumes } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Resource, type RuleContextView } from "../model.ts";
import { configForAgent, path } from "./support.ts";

export interface Wanted {
  readonly what: string;
  readonly kind: "secret" | "claim";
  /** The name the platform config gives, when there is one. */
  fromConfig(config: PlatformConfig): string;
  /** Name suffix WorkflowDeployment uses, for Terraform without a platform config. */
  readonly suffix: string;
  readonly readOnly: boolean;
}

export function checkAgentMounts(resource: Resource, context: RuleContextView, wanted: readonly Wanted[]): Outcome | Outcome[] {
  if (!isAgentWorkload(resource, context)) return notApplicable;
  const pod = podTemplateOf(resource, context);
  if (!pod) return notApplicable;
  const config = configForAgent(resource, context);
  const outcomes: Outcome[] = [];
  for (const w of wanted) {
    const expected = config ? w.fromConfig(config) : undefined;
    const volumes =
      w.kind === "secret"
        ? secretVolumes(pod, context).map((v) => ({ volume: v.volume, name: v.secretName }))
        : claimVolumes(pod, context).map((v) => ({ volume: v.volume, name: v.claimName }));
    const match = volumes.find((v) => (expected ? v.name === expected : v.name.endsWith(w.suffix)));
    const label = expected ? `'${expected}'` : `'*${w.suffix}'`;
    if (!match) {
      outcomes.push(violation(path(...pod.specPath, "volume"), `the agent has no volume for its ${w.what} (${w.kind} ${label})`));
      continue;
    }
    const mounts = mountsOf(pod, match.volume);
    if (mounts.length === 0) {
      outcomes.push(violation(path(...pod.specPath, "container", 0, "volume_mount"), `the agent's ${w.what} volume '${match.volume}' is not mounted`));
    } else if (w.readOnly) {
      for (const m of mounts.filter((m) => bool(m.mount.read_only) !== true)) {
        outcomes.push(violation(path(...m.container.path, "volume_mount", m.index, "read_only"), `the agent's ${w.what} is mounted writable`));
      }
    }
  }
  return outcomes.length ? outcomes : compliant;
}
