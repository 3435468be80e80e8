/**
 * Decides whether a verified identity may perform an action, deny by default.
 *
 * An object of another tenant is reported as `not-found` (the route answers 404, never 403), so a
 * caller learns nothing about what other tenants hold. Roles never reach across tenants: an admin of
 * one tenant is nobody in another.
 */
import type { Role, TenantConfig } from "../../config/schema.ts";
import type { Identity } from "../identity/types.ts";
import { ACTIONS, isAction, roleAtLeast } from "./actions.ts";
import { RoleBindings, type DefaultRoles } from "./roles.ts";

/** What an action is performed on: anything that belongs to a tenant (run, artifact, log). */
export interface TenantObject {
  readonly tenant: string;
  /**
   * Subject that created the object, for actions whose `othersRole` is stricter. null: the object has an
   * owner that is not known (stored before owners were recorded), so only `othersRole` may act on it.
   */
  readonly owner?: string | null;
}

export type DenyReason = "unauthenticated" | "unknown-tenant" | "unknown-action" | "not-found" | "no-role" | "insufficient-role";

export type Decision =
  | { readonly allowed: true; readonly role: Role }
  | { readonly allowed: false; readonly status: 401 | 403 | 404; readonly reason: DenyReason; readonly detail: string };

function deny(status: 401 | 403 | 404, reason: DenyReason, detail: string): Decision {
  return { allowed: false, status, reason, detail };
}

export function authorize(bindings: RoleBindings, identity: Identity | undefined, action: string, object?: TenantObject): Decision {
  if (identity === undefined) return deny(401, "unauthenticated", "no verified identity");
  // A tenant removed from the config since the credential was issued: the credential no longer holds.
  if (!bindings.hasTenant(identity.tenant)) return deny(401, "unknown-tenant", `tenant '${identity.tenant}' is not in the platform config`);
  if (!isAction(action)) return deny(403, "unknown-action", `'${action}' is not a declared action`);
  if (object !== undefined && object.tenant !== identity.tenant) return deny(404, "not-found", "the object belongs to another tenant");
  const role = bindings.roleOf(identity);
  if (role === null) return deny(403, "no-role", `'${identity.subject}' holds no role in tenant '${identity.tenant}'`);
  const spec = ACTIONS[action];
  const othersRole: Role | undefined = "othersRole" in spec ? spec.othersRole : undefined;
  const needed: Role = othersRole !== undefined && object?.owner !== undefined && object.owner !== identity.subject ? othersRole : spec.role;
  if (!roleAtLeast(role, needed)) return deny(403, "insufficient-role", `'${action}' needs role ${needed}; '${identity.subject}' holds ${role}`);
  return { allowed: true, role };
}

/** Role bindings of the platform config and the decision over them, for the agent to hold. */
export class Authorizer {
  readonly bindings: RoleBindings;

  constructor(bindings: RoleBindings) {
    this.bindings = bindings;
  }

  authorize(identity: Identity | undefined, action: string, object?: TenantObject): Decision {
    return authorize(this.bindings, identity, action, object);
  }
}

/** The authorizer over the platform config's tenants and their roles. */
export function authorizerFromConfig(config: { readonly tenants: readonly Pick<TenantConfig, "name" | "roles">[] }, defaults?: DefaultRoles): Authorizer {
  return new Authorizer(new RoleBindings(config.tenants, defaults));
}
