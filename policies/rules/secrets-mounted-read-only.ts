import { bool, mountsOf, secretVolumes } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Outcome, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const secretsMountedReadOnly: Rule = {
  id: "GF-POD-011",
  name: "secrets-mounted-read-only",
  level: "error",
  title: "Secrets are mounted read-only",
  rationale:
    "A writable mount of the keyring or token Secret lets the process that reads keys also replace them; keys are read, never written, by workloads.",
  remediation: "Set `read_only = true` on every volume_mount of a Secret volume.",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(a)(2)(iv)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      const secrets = secretVolumes(pod, context);
      if (secrets.length === 0) return notApplicable;
      const outcomes: Outcome[] = [];
      for (const { volume, secretName } of secrets) {
        for (const { container, mount, index } of mountsOf(pod, volume)) {
          if (bool(mount.read_only) !== true) {
            outcomes.push(violation(path(...container.path, "volume_mount", index, "read_only"), `container '${container.name}' mounts Secret '${secretName}' writable`));
          }
        }
      }
      return outcomes.length ? outcomes : compliant;
    });
  },
};
