import { type Rule } from "../model.ts";
import { checkAgentMounts } from "./agent-wiring.ts";
import { controls, workloadKinds } from "./support.ts";

export const agentAuthTokens: Rule = {
  id: "GF-AGT-004",
  name: "agent-auth-tokens",
  level: "error",
  title: "Every agent authenticates tenants with per-tenant tokens",
  rationale:
    "The agent identifies each caller by a per-tenant token (hashes in the `<name>-tokens` Secret); without it mounted no request can be attributed to a tenant.",
  remediation:
    "Deploy the agent through WorkflowDeployment (it mounts the `<name>-tokens` Secret read-only), or add the Secret volume and a read_only mount.",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(a)(2)(i)"), controls.hipaa("164.312(d)"), controls.soc2("CC6.1")],
  kinds: workloadKinds,
  check(resource, context) {
    return checkAgentMounts(resource, context, [
      { what: "tenant token hashes", kind: "secret", fromConfig: (c) => c.security.auth.tokens.secretName, suffix: "-tokens", readOnly: true },
    ]);
  },
};
