/**
 * One request's security decision, in the order the agent's HTTP layer applies it: the route's
 * declared action (an undeclared route is refused), the credential, then the object. A missing object
 * and another tenant's object get the same 404, so probing ids reveals nothing.
 */
import type { Authenticator } from "../identity/authenticate.ts";
import type { AuthFailureReason, Identity } from "../identity/types.ts";
import type { Action } from "./actions.ts";
import type { Authorizer, DenyReason, TenantObject } from "./authorize.ts";
import { PUBLIC, WORKER, type RouteTable } from "./routes.ts";

export interface GuardRequest {
  readonly method: string;
  /** The matched route's path template (fastify: `request.routeOptions.url`). */
  readonly route: string;
  readonly authorization: string | undefined;
  /** Loads the object the route acts on, once the caller is authenticated; undefined if there is none. */
  readonly loadObject?: () => Promise<TenantObject | undefined>;
}

export type GuardDecision =
  | { readonly allowed: true; readonly action: Action | typeof PUBLIC; readonly identity?: Identity; readonly object?: TenantObject }
  | {
      readonly allowed: false;
      readonly status: 401 | 403 | 404 | 503;
      readonly reason: AuthFailureReason | DenyReason | "undeclared-route";
      readonly detail: string;
      /** The verified caller, when it got that far (for the audit log). */
      readonly identity?: Identity;
    };

export interface Guard {
  check(request: GuardRequest): Promise<GuardDecision>;
}

export function createGuard(parts: { readonly routes: RouteTable; readonly authenticator: Authenticator; readonly authorizer: Authorizer }): Guard {
  return {
    async check(request) {
      const action = parts.routes.actionFor(request.method, request.route);
      if (action === undefined) return { allowed: false, status: 403, reason: "undeclared-route", detail: `${request.method} ${request.route} declares no action` };
      if (action === PUBLIC) return { allowed: true, action };
      // Workers' routes are not tenants' routes: a guard over tenant roles never admits them.
      if (action === WORKER) return { allowed: false, status: 403, reason: "undeclared-route", detail: `${request.method} ${request.route} is a worker's route` };
      const auth = await parts.authenticator.authenticate(request.authorization);
      if (!auth.ok) return { allowed: false, status: auth.status, reason: auth.reason, detail: auth.detail };
      const { identity } = auth;
      let object: TenantObject | undefined;
      if (request.loadObject !== undefined) {
        object = await request.loadObject();
        if (object === undefined) return { allowed: false, status: 404, reason: "not-found", detail: "no such object", identity };
      }
      const decision = parts.authorizer.authorize(identity, action, object);
      if (!decision.allowed) return { allowed: false, status: decision.status, reason: decision.reason, detail: decision.detail, identity };
      return { allowed: true, action, identity, ...(object ? { object } : {}) };
    },
  };
}
