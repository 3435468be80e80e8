import { type Rule } from "../model.ts";
import { checkAgentMounts } from "./agent-wiring.ts";
import { controls, workloadKinds } from "./support.ts";

export const agentAuditSink: Rule = {
  id: "GF-AGT-001",
  name: "agent-audit-sink",
  level: "error",
  title: "Every agent writes its audit log to a sink and signs it",
  rationale:
    "The audit log records who ran what on which GPU with which data; checkpoints signed with a key the writer cannot alter and exported to a separate volume make tampering detectable.",
  remediation:
    "Deploy the agent through WorkflowDeployment (it mounts the `<name>-audit` claim and the `<name>-audit-signing` Secret), or add both volumes and mounts to the agent pod.",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(b)"), controls.hipaa("164.312(c)"), controls.soc2("CC7.2")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkAgentMounts(resource, context, [
      { what: "audit sink", kind: "claim", fromConfig: (c) => c.security.audit.sink.claimName, suffix: "-audit", readOnly: false },
      { what: "audit signing key", kind: "secret", fromConfig: (c) => c.security.audit.signingKey.secretName, suffix: "-audit-signing", readOnly: true },
    ]);
  },
};
