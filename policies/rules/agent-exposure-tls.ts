import { get, isAgentWorkload, namespaceOf, podTemplateOf, secretVolumes, selectorMatches, stringMap } from "../kubernetes.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { configForAgent, controls } from "./support.ts";

const EXPOSED = new Set(["LoadBalancer", "NodePort"]);

export const agentExposureTls: Rule = {
  id: "GF-NET-004",
  name: "agent-exposure-requires-tls",
  level: "error",
  title: "The agent is exposed outside the cluster only with TLS",
  rationale:
    "A LoadBalancer or NodePort Service puts the agent API on a network outside the cluster; without TLS the tenant tokens and workflow inputs cross it in clear text.",
  remediation:
    "Keep the agent Service ClusterIP behind an ingress that terminates TLS, or enable TLS on the WorkflowDeployment (it mounts the `<name>-tls` Secret and sets security.tls.enabled in the platform config).",
  controls: [controls.baseline("agent"), controls.hipaa("164.312(e)"), controls.hipaa("164.312(d)"), controls.soc2("CC6.7")],
  kinds: ["service"],
  check(resource, context) {
    const type = get(resource.attributes, ["spec", "type"]);
    if (typeof type !== "string" || !EXPOSED.has(type)) return notApplicable;
    const ns = namespaceOf(resource, context);
    const selector = stringMap(get(resource.attributes, ["spec", "selector"]), context);
    if (Object.keys(selector).length === 0) return notApplicable;
    const allAgents = context.memo("agent-workloads", () => context.resources.filter((r) => isAgentWorkload(r, context)));
    const agents = allAgents.filter((r) => {
      if (namespaceOf(r, context) !== ns) return false;
      const pod = podTemplateOf(r, context);
      return pod !== undefined && selectorMatches({ match_labels: selector }, pod.labels);
    });
    if (agents.length === 0) return notApplicable;
    const withoutTls = agents.filter((agent) => {
      const pod = podTemplateOf(agent, context)!;
      const config = configForAgent(agent, context);
      const tlsSecret = config?.security.tls.enabled ? config.security.tls.certificate?.secretName : undefined;
      return !secretVolumes(pod, context).some((v) => (tlsSecret ? v.secretName === tlsSecret : v.secretName.endsWith("-tls")));
    });
    return withoutTls.length === 0
      ? compliant
      : violation("spec.type", `Service type ${type} exposes the agent (${withoutTls.map((a) => a.address).join(", ")}) which serves without TLS`);
  },
};
