import { asArray, containersOf, get, isAgentWorkload, objects, podTemplateOf, secretVolumes, type ContainerRef, type PodTemplate } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Resource, type Rule, type RuleContextView } from "../model.ts";
import { configForAgent, controls, path, workloadKinds } from "./support.ts";

export const stageContainerNoSecrets: Rule = {
  id: "GF-AGT-005",
  name: "stage-container-no-secrets",
  level: "error",
  title: "The container where stages run holds no Secret",
  rationale:
    "Stages run code the platform does not control (a workflow's commands, custom ComfyUI nodes). A Secret mounted into, or read into the environment of, the container they run in is one file read away from them: the keyring, the API tokens and the audit signing key would let a stage decrypt every tenant's outputs, act as any caller and forge the audit log.",
  remediation:
    "Deploy the agent through WorkflowDeployment: stages run in its `runner` container (`gpufabric runner --socket …`), which mounts no Secret. In plain Terraform, keep every Secret volume mount, `env.value_from.secret_key_ref` and `env_from.secret_ref` in the agent's container, run stages in a second container whose args start with `runner`, and set the platform config's `isolation.mode` to `runner`.",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1"), controls.soc2("CC6.3")],
  kinds: workloadKinds,
  check(resource, context) {
    if (!isAgentWorkload(resource, context)) return notApplicable;
    const pod = podTemplateOf(resource, context);
    if (!pod) return notApplicable;
    const stageContainers = containersRunningStages(resource, pod, context);
    if (stageContainers.length === 0) return notApplicable;
    const secretVolumeNames = new Map(secretVolumes(pod, context).map((v) => [v.volume, v.secretName]));
    const outcomes: Outcome[] = [];
    for (const ref of stageContainers) outcomes.push(...secretsReadBy(ref, secretVolumeNames, context));
    return outcomes.length ? outcomes : compliant;
  },
};

/**
 * The containers stages run in: those started as `runner`; where there is none and the agent starts
 * stages itself (a single-container pod whose platform config says isolation mode `bubblewrap`, the
 * schema's default, and has no cluster section), the agent's own container.
 */
function containersRunningStages(resource: Resource, pod: PodTemplate, context: RuleContextView): ContainerRef[] {
  const containers = containersOf(pod);
  const runners = containers.filter((c) => context.resolve(asArray(c.container.args)[0]) === "runner");
  if (runners.length > 0) return runners;
  const regular = containers.filter((c) => c.path.includes("container"));
  if (regular.length !== 1) return [];
  const config = configForAgent(resource, context);
  // A cluster's control planes start no stage: its workers do, and `isolation` then says how they sandbox them.
  if (config?.cluster) return [];
  return config?.isolation.mode === "bubblewrap" ? regular : [];
}

function secretsReadBy(ref: ContainerRef, secretVolumeNames: ReadonlyMap<string, string>, context: RuleContextView): Outcome[] {
  const out: Outcome[] = [];
  objects(ref.container.volume_mount).forEach((mount, i) => {
    const secretName = secretVolumeNames.get(String(mount.name ?? ""));
    if (secretName !== undefined) {
      out.push(violation(path(...ref.path, "volume_mount", i), `container '${ref.name}' runs stages and mounts Secret '${secretName}' (volume '${String(mount.name)}')`));
    }
  });
  objects(ref.container.env).forEach((env, i) => {
    const name = context.resolve(get(env, ["value_from", "secret_key_ref", "name"]));
    if (objects(get(env, ["value_from", "secret_key_ref"])).length > 0) {
      out.push(violation(path(...ref.path, "env", i, "value_from", "secret_key_ref"), `container '${ref.name}' runs stages and reads Secret '${String(name ?? "?")}' into ${String(env.name ?? "an environment variable")}`));
    }
  });
  objects(ref.container.env_from).forEach((source, i) => {
    const name = context.resolve(get(source, ["secret_ref", "name"]));
    if (objects(get(source, ["secret_ref"])).length > 0) {
      out.push(violation(path(...ref.path, "env_from", i, "secret_ref"), `container '${ref.name}' runs stages and reads every key of Secret '${String(name ?? "?")}' into its environment`));
    }
  });
  return out;
}
