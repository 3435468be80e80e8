/**
 * The role a verified identity holds in its tenant, from the tenant's `roles` in the platform config.
 *
 * A role subject is a token subject name, an OIDC `sub` value, or `group:NAME` (matched against the
 * identity's groups claim). When several entries match, the highest role wins.
 *
 * Identities no entry matches get a default by authentication method:
 * - static-token holders: `viewer`. Only an operator can put a token's hash into a tenant's file, so
 *   holding one proves membership of the tenant; least privilege keeps it to reading, and submitting
 *   (which spends GPU time) takes one explicit line in `roles`.
 * - OIDC identities: no role (every action is refused). The tenant claim is asserted by a directory
 *   shared with everything else the provider serves, so it alone grants nothing: list the subjects or
 *   groups that may act.
 */
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import type { Role, TenantConfig } from "../../config/schema.ts";
import type { Identity } from "../identity/types.ts";
import { higherRole } from "./actions.ts";

export const GROUP_PREFIX = "group:";

export type DefaultRoles = Readonly<Record<Identity["method"], Role | null>>;
export const DEFAULT_ROLES: DefaultRoles = { token: "viewer", oidc: null };

interface TenantRoles {
  readonly subjects: ReadonlyMap<string, Role>;
  readonly groups: ReadonlyMap<string, Role>;
}

export class RoleBindings {
  readonly #tenants: ReadonlyMap<string, TenantRoles>;
  readonly #defaults: DefaultRoles;

  /** Throws a ValidationError naming `tenants[i].roles[j].subject` for a binding that can match no one. */
  constructor(tenants: readonly Pick<TenantConfig, "name" | "roles">[], defaults: DefaultRoles = DEFAULT_ROLES) {
    const issues: FieldIssue[] = [];
    const map = new Map<string, TenantRoles>();
    tenants.forEach((tenant, i) => {
      const subjects = new Map<string, Role>();
      const groups = new Map<string, Role>();
      tenant.roles.forEach(({ subject, role }, j) => {
        const field = `tenants[${i}].roles[${j}].subject`;
        if (subject !== subject.trim() || subject === "") {
          issues.push({ field, message: `'${subject}' has leading or trailing spaces or is empty: write the subject exactly as the token or provider names it` });
          return;
        }
        const [target, name] = subject.startsWith(GROUP_PREFIX) ? [groups, subject.slice(GROUP_PREFIX.length)] : [subjects, subject];
        if (name === "") {
          issues.push({ field, message: "'group:' names no group: write group:NAME" });
          return;
        }
        const previous = target.get(name);
        target.set(name, previous === undefined ? role : higherRole(previous, role));
      });
      map.set(tenant.name, { subjects, groups });
    });
    if (issues.length > 0) throw new ValidationError("role bindings", issues);
    this.#tenants = map;
    this.#defaults = defaults;
  }

  hasTenant(tenant: string): boolean {
    return this.#tenants.has(tenant);
  }

  /** The identity's role in its own tenant, or null when it holds none. */
  roleOf(identity: Identity): Role | null {
    const tenant = this.#tenants.get(identity.tenant);
    if (tenant === undefined) return null;
    let role: Role | null = tenant.subjects.get(identity.subject) ?? null;
    for (const group of identity.groups) {
      const granted = tenant.groups.get(group);
      if (granted !== undefined) role = role === null ? granted : higherRole(role, granted);
    }
    return role ?? this.#defaults[identity.method];
  }
}
