/**
 * The identity of an agent workload: its ServiceAccount (no token mounted) and a Role of least privilege
 * bound to it: read its own config, record events, hold its own leader lease. Nothing cluster-wide.
 */
import { RoleBindingV1 } from "@cdktf/provider-kubernetes/lib/role-binding-v1/index.js";
import { RoleV1 } from "@cdktf/provider-kubernetes/lib/role-v1/index.js";
import { ServiceAccountV1 } from "@cdktf/provider-kubernetes/lib/service-account-v1/index.js";
import type { Construct } from "constructs";
import type { AgentMetadata } from "./metadata.ts";

export interface AgentRbacProps {
  readonly meta: AgentMetadata;
  /** The ConfigMap holding the platform config, the only one it may read. */
  readonly configMapName: string;
  /** @default the agent's name */
  readonly leaseName?: string;
  /**
   * Prefix of the construct ids, for a second workload of the same agent (`Worker` → `WorkerRole`).
   * @default "" (ServiceAccount, Role, RoleBinding)
   */
  readonly idPrefix?: string;
}

export class AgentRbac {
  readonly serviceAccount: ServiceAccountV1;
  readonly role: RoleV1;
  readonly roleBinding: RoleBindingV1;

  /** Adds its objects to `scope` itself, not to a child construct, so their Terraform addresses stay put. */
  constructor(scope: Construct, props: AgentRbacProps) {
    const { meta } = props;
    const prefix = props.idPrefix ?? "";
    this.serviceAccount = new ServiceAccountV1(scope, `${prefix}ServiceAccount`, {
      metadata: meta.of(meta.name),
      automountServiceAccountToken: false,
    });
    this.role = new RoleV1(scope, `${prefix}Role`, {
      metadata: meta.of(meta.name),
      rule: [
        { apiGroups: [""], resources: ["configmaps"], resourceNames: [props.configMapName], verbs: ["get", "watch"] },
        { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
        { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [props.leaseName ?? meta.name], verbs: ["get", "update"] },
      ],
    });
    this.roleBinding = new RoleBindingV1(scope, `${prefix}RoleBinding`, {
      metadata: meta.of(meta.name),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: this.role.metadata.name },
      subject: [{ kind: "ServiceAccount", name: this.serviceAccount.metadata.name, namespace: meta.namespace }],
    });
  }
}
