import { get, objects } from "../kubernetes.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

export const noHostPathVolumes: Rule = {
  id: "GF-POD-008",
  name: "no-host-path-volumes",
  level: "error",
  title: "Pods do not mount host paths",
  rationale:
    "A hostPath volume reads and writes the node's filesystem: other tenants' cached models and outputs, the kubelet's credentials, the container runtime socket.",
  remediation:
    "Use a PersistentVolumeClaim from a StorageTier (`tier.claimsFor(segment)`) or an emptyDir instead of `host_path`.",
  controls: [controls.baseline("isolation"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      const outcomes: Outcome[] = [];
      objects(pod.spec.volume).forEach((v, i) => {
        const hostPath = get(v, ["host_path", "path"]);
        if (get(v, ["host_path"]) !== undefined) outcomes.push(violation(path(...pod.specPath, "volume", i, "host_path"), `volume '${String(v.name)}' mounts the host path ${String(hostPath ?? "")}`.trim()));
      });
      return outcomes.length ? outcomes : compliant;
    });
  },
};
