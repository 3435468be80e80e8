import { configPath } from "../context.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { checkConfigs, controls } from "./support.ts";

export const clusterControlPlaneReplicas: Rule = {
  id: "GF-CLU-002",
  name: "cluster-control-plane-replicas",
  level: "error",
  title: "A cluster runs at least two control planes",
  rationale:
    "The control plane takes every submission and its leader places every stage. With one replica, a node failure, a drain or a rolling update stops the API and all scheduling until a new pod is up; with two, the other replica keeps serving and takes the leader's lease within its expiry.",
  remediation:
    "Set the WorkflowDeployment's `cluster.controlPlaneReplicas` to 2 or more (the default is 2), or in plain Terraform the platform config's `cluster.controlPlaneReplicas` and the control-plane Deployment's `spec.replicas`.",
  controls: [controls.soc2("CC9.1")],
  kinds: ["config_map"],
  check(resource, context) {
    return checkConfigs(resource, context, (config, source) => {
      // A single agent has no replicas to count: it is one process by design.
      if (config.cluster === null) return notApplicable;
      const replicas = config.cluster.controlPlaneReplicas;
      return replicas >= 2
        ? compliant
        : violation(configPath(source, "cluster.controlPlaneReplicas"), `${replicas} control-plane replica: losing its node stops the API and scheduling until it is replaced`);
    });
  },
};
