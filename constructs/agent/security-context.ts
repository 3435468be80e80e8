/**
 * The restricted security contexts every part starts from (Pod Security Standard "restricted"): a part
 * gets them without asking, and nothing in this folder offers a way to loosen them.
 */
import type {
  DeploymentV1SpecTemplateSpecContainerSecurityContext,
  DeploymentV1SpecTemplateSpecSecurityContext,
} from "@cdktf/provider-kubernetes/lib/deployment-v1/index.js";

/** Non-root, no privilege escalation, read-only root filesystem, every capability dropped, RuntimeDefault seccomp. */
export function restrictedContainerSecurityContext(uid: string): DeploymentV1SpecTemplateSpecContainerSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Non-root with `uid` as user, group and fsGroup (so mounted Secrets are group-readable by it alone), RuntimeDefault seccomp. */
export function restrictedPodSecurityContext(uid: string): DeploymentV1SpecTemplateSpecSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: "RuntimeDefault" },
  };
}
