/** The policy engine: rules, packs, checks over Terraform JSON, reports, and the run-time half. */
export * from "./model.ts";
export { runChecks, hasFailures, type CheckOptions } from "./engine.ts";
export { loadTerraformResources, resourcesFromTerraformJson, terraformJsonFiles } from "./terraform.ts";
export { loadAcknowledgementFile, MIN_REASON_LENGTH, type TargetedAcknowledgement } from "./acknowledgements.ts";
export { allRules, ruleById } from "./rules/index.ts";
export { packs, rulesOf, isPackId, type Pack } from "./packs/index.ts";
export { render, FORMATS, type Format } from "./reporters/index.ts";
export { evaluateSubmission, type SubmissionRequest, type SubmissionDecision } from "./runtime/enforce.ts";
export { runtimeRulesFor, allowedRegionsFromRuntimeRules } from "./runtime/rules.ts";
export { RuleContext } from "./context.ts";
