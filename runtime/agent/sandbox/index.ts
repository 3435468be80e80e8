/** The sandbox stage processes run in: bubblewrap namespaces, a uid per tenant, rlimits. */
export { STAGE_VIEW, bubblewrapArgs, masksWithin, mountPointParents, programDirsOf, isInside, type SandboxPlan, type ProtectedPath, type Rlimits } from "./bubblewrap.ts";
export { StageSandbox, SandboxRefusal, resolveProgram, type SandboxAttempt, type SandboxLaunch, type SandboxIdentity, type StageSandboxOptions } from "./sandbox.ts";
export { probeSandbox, canChangeUsers, type ProbeInput, type ProbeResult } from "./probe.ts";
