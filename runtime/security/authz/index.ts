export { ACTIONS, isAction, roleAtLeast, higherRole, type Action, type ActionSpec } from "./actions.ts";
export { RoleBindings, DEFAULT_ROLES, GROUP_PREFIX, type DefaultRoles } from "./roles.ts";
export { authorize, authorizerFromConfig, Authorizer, type Decision, type DenyReason, type TenantObject } from "./authorize.ts";
export { RouteTable, HTTP_METHODS, PUBLIC, WORKER, type HttpMethod, type RouteDeclaration, type RegisteredRoute, type CoverageReport } from "./routes.ts";
export { createGuard, type Guard, type GuardDecision, type GuardRequest } from "./guard.ts";
