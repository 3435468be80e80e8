import { asArray, get } from "../kubernetes.ts";
import { compliant, violation, type Rule } from "../model.ts";
import { checkContainers, controls, path, workloadKinds } from "./support.ts";

/** The only capability the restricted Pod Security Standard lets a container add back. */
const ALLOWED_ADD = new Set(["NET_BIND_SERVICE"]);

export const dropAllCapabilities: Rule = {
  id: "GF-POD-004",
  name: "drop-all-capabilities",
  level: "error",
  title: "Containers drop all Linux capabilities",
  rationale:
    "The default capability set (NET_RAW, CHOWN, SETUID, ...) is more than a model server or workflow stage needs and widens what an exploited process can do on the node.",
  remediation:
    "Set `capabilities { drop = [\"ALL\"] }` in the container security_context; add back NET_BIND_SERVICE only if the process binds a port below 1024.",
  controls: [controls.baseline("hardening"), controls.hipaa("164.312(a)(1)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkContainers(resource, context, ({ container, path: cpath, name }) => {
      const caps = get(container, ["security_context", "capabilities"]);
      const extra = asArray(get(caps, ["add"])).map(String).filter((c) => !ALLOWED_ADD.has(c.replace(/^CAP_/, "")));
      if (extra.length > 0) return violation(path(...cpath, "security_context", "capabilities", "add"), `container '${name}' adds ${extra.join(", ")}`);
      return asArray(get(caps, ["drop"])).map(String).some((c) => c.toUpperCase() === "ALL")
        ? compliant
        : violation(path(...cpath, "security_context", "capabilities", "drop"), `container '${name}' does not drop ALL capabilities`);
    });
  },
};
