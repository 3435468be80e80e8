/** Every rule, in id order. One rule per file; add a new one here. */
import type { Rule } from "../model.ts";
import { agentAuditSink } from "./agent-audit-sink.ts";
import { agentKeyring } from "./agent-keyring.ts";
import { agentDisruptionBudget } from "./agent-disruption-budget.ts";
import { agentAuthTokens } from "./agent-auth-tokens.ts";
import { stageContainerNoSecrets } from "./stage-container-no-secrets.ts";
import { platformConfigValid } from "./platform-config-valid.ts";
import { residencyRegion } from "./residency-region.ts";
import { residencyZone } from "./residency-zone.ts";
import { gpuLimits } from "./gpu-limits.ts";
import { gpuRequestWithinQuota } from "./gpu-request-within-quota.ts";
import { gpuTaintToleration } from "./gpu-taint-toleration.ts";
import { gpuNodeSelection } from "./gpu-node-selection.ts";
import { isolatedTenantsNotTimeSliced } from "./isolated-tenants-not-time-sliced.ts";
import { tenantGpuQuota } from "./tenant-gpu-quota.ts";
import { gpuNamespaceQuota } from "./gpu-namespace-quota.ts";
import { timeSlicingFailMultiRequests } from "./time-slicing-fail-multi-requests.ts";
import { gpuPriorityClass } from "./gpu-priority-class.ts";
import { cpuLimits } from "./cpu-limits.ts";
import { memoryLimits } from "./memory-limits.ts";
import { namespaceDefaultDenyIngress } from "./namespace-default-deny-ingress.ts";
import { namespaceDefaultDenyEgress } from "./namespace-default-deny-egress.ts";
import { workloadNetworkPolicy } from "./workload-network-policy.ts";
import { agentExposureTls } from "./agent-exposure-tls.ts";
import { egressNotUnrestricted } from "./egress-not-unrestricted.ts";
import { namespacePodSecurityRestricted } from "./namespace-pod-security-restricted.ts";
import { runAsNonRoot } from "./run-as-non-root.ts";
import { readOnlyRootFilesystem } from "./read-only-root-filesystem.ts";
import { noPrivilegeEscalation } from "./no-privilege-escalation.ts";
import { dropAllCapabilities } from "./drop-all-capabilities.ts";
import { seccompProfile } from "./seccomp-profile.ts";
import { noPrivilegedContainers } from "./no-privileged-containers.ts";
import { noHostNamespaces } from "./no-host-namespaces.ts";
import { noHostPathVolumes } from "./no-host-path-volumes.ts";
import { serviceAccountTokenAutomount } from "./service-account-token-automount.ts";
import { imagePinned } from "./image-pinned.ts";
import { secretsMountedReadOnly } from "./secrets-mounted-read-only.ts";
import { noWildcardRbac } from "./no-wildcard-rbac.ts";
import { noClusterAdminBinding } from "./no-cluster-admin-binding.ts";
import { regulatedStorageEncrypted } from "./regulated-storage-encrypted.ts";
import { regulatedTierRetention } from "./regulated-tier-retention.ts";
import { clusterDatabaseTls } from "./cluster-database-tls.ts";
import { clusterControlPlaneReplicas } from "./cluster-control-plane-replicas.ts";

export const allRules: readonly Rule[] = [
  agentAuditSink,
  agentKeyring,
  agentDisruptionBudget,
  agentAuthTokens,
  stageContainerNoSecrets,
  clusterDatabaseTls,
  clusterControlPlaneReplicas,
  platformConfigValid,
  residencyRegion,
  residencyZone,
  gpuLimits,
  gpuTaintToleration,
  gpuNodeSelection,
  isolatedTenantsNotTimeSliced,
  tenantGpuQuota,
  gpuNamespaceQuota,
  timeSlicingFailMultiRequests,
  gpuPriorityClass,
  gpuRequestWithinQuota,
  cpuLimits,
  memoryLimits,
  namespaceDefaultDenyIngress,
  namespaceDefaultDenyEgress,
  workloadNetworkPolicy,
  agentExposureTls,
  egressNotUnrestricted,
  namespacePodSecurityRestricted,
  runAsNonRoot,
  readOnlyRootFilesystem,
  noPrivilegeEscalation,
  dropAllCapabilities,
  seccompProfile,
  noPrivilegedContainers,
  noHostNamespaces,
  noHostPathVolumes,
  serviceAccountTokenAutomount,
  imagePinned,
  secretsMountedReadOnly,
  noWildcardRbac,
  noClusterAdminBinding,
  regulatedStorageEncrypted,
  regulatedTierRetention,
];

export function ruleById(id: string): Rule | undefined {
  return allRules.find((r) => r.id === id);
}
