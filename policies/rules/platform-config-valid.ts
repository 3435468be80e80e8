import { configPath } from "../context.ts";
import { compliant, notApplicable, violation, type Rule } from "../model.ts";
import { controls } from "./support.ts";

export const platformConfigValid: Rule = {
  id: "GF-CFG-001",
  name: "platform-config-valid",
  level: "error",
  title: "The platform config an agent reads is valid",
  rationale: "The agent refuses to start on an invalid platform config; finding it at synth saves a failed rollout.",
  remediation: "Fix the fields listed (the message names each one); when written by WorkflowDeployment, report it as a bug.",
  controls: [controls.baseline("config"), controls.soc2("CC7.2")],
  kinds: ["config_map"],
  check(resource, context) {
    const sources = context.platformConfigs().filter((s) => s.resource === resource);
    if (sources.length === 0) return notApplicable;
    return sources.map((s) => (s.problems ? violation(configPath(s, ""), `the platform config does not validate: ${s.problems.join("; ")}`) : compliant));
  },
};
