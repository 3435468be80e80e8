import { type Rule } from "../model.ts";
import { checkAgentMounts } from "./agent-wiring.ts";
import { controls, workloadKinds } from "./support.ts";

export const agentKeyring: Rule = {
  id: "GF-AGT-002",
  name: "agent-keyring",
  level: "error",
  title: "Every agent has its encryption keyring, read-only",
  rationale:
    "The agent seals every output with envelope encryption under the keyring; without it mounted it cannot encrypt at rest, and mounted writable the keys can be swapped.",
  remediation:
    "Deploy the agent through WorkflowDeployment (it mounts the `<name>-keyring` Secret read-only), or add a Secret volume and a read_only volume_mount for it.",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(a)(2)(iv)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkAgentMounts(resource, context, [
      { what: "keyring", kind: "secret", fromConfig: (c) => c.security.encryption.keyring.secretName, suffix: "-keyring", readOnly: true },
    ]);
  },
};
