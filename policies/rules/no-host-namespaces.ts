import { bool } from "../kubernetes.ts";
import { compliant, violation, type Outcome, type Rule } from "../model.ts";
import { checkPod, controls, path, workloadKinds } from "./support.ts";

const HOST_FIELDS = ["host_network", "host_pid", "host_ipc"] as const;

export const noHostNamespaces: Rule = {
  id: "GF-POD-007",
  name: "no-host-namespaces",
  level: "error",
  title: "Pods do not share the node's network, PID or IPC namespace",
  rationale:
    "Host namespaces let a pod see other tenants' processes and shared memory (CUDA IPC handles included) and bypass NetworkPolicies.",
  remediation: "Remove `host_network`, `host_pid` and `host_ipc` from the pod spec (they default to false).",
  controls: [controls.baseline("isolation"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.6")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkPod(resource, context, (pod) => {
      const outcomes: Outcome[] = HOST_FIELDS.filter((f) => bool(pod.spec[f]) === true).map((f) =>
        violation(path(...pod.specPath, f), `the pod sets ${f} = true`),
      );
      return outcomes.length ? outcomes : compliant;
    });
  },
};
