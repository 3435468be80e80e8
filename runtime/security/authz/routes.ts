/**
 * The route table: every HTTP route declares the action it performs, or that it is public (health
 * probes). The agent checks at start that every route it registered is declared, so a route added
 * without a decision is a start-up failure rather than an open door.
 */
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import { isAction, type Action } from "./actions.ts";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Routes that need no identity. Keep this to probes that reveal nothing. */
export const PUBLIC = "public" as const;
/** A route of the cluster's workers: authenticated by a worker's own token, never by a tenant's role. */
export const WORKER = "worker" as const;

export interface RouteDeclaration {
  readonly method: HttpMethod;
  /** The route's path template as the HTTP framework spells it, e.g. `/v1/runs/:runId`. */
  readonly path: string;
  readonly action: Action | typeof PUBLIC | typeof WORKER;
}

/** A route as the HTTP framework reports it (fastify's `onRoute` hook: method may be a list). */
export interface RegisteredRoute {
  readonly method: string | readonly string[];
  readonly url: string;
}

export interface CoverageReport {
  /** Registered but not declared: these would have no authorization decision. */
  readonly undeclared: readonly string[];
  /** Declared but not registered: stale declarations. */
  readonly unregistered: readonly string[];
}

const key = (method: string, path: string) => `${method.toUpperCase()} ${path}`;

export class RouteTable {
  readonly #routes: ReadonlyMap<string, RouteDeclaration>;

  /** Throws a ValidationError naming `routes[i].field` for every bad or duplicate declaration. */
  constructor(declarations: readonly RouteDeclaration[]) {
    const issues: FieldIssue[] = [];
    const routes = new Map<string, RouteDeclaration>();
    declarations.forEach((route, i) => {
      const method = String(route.method).toUpperCase();
      if (!(HTTP_METHODS as readonly string[]).includes(method)) {
        issues.push({ field: `routes[${i}].method`, message: `'${route.method}' is not an HTTP method: use one of ${HTTP_METHODS.join(", ")}` });
      }
      if (typeof route.path !== "string" || !route.path.startsWith("/")) {
        issues.push({ field: `routes[${i}].path`, message: "must be a path template starting with '/'" });
      }
      if (route.action !== PUBLIC && route.action !== WORKER && !isAction(route.action)) {
        issues.push({ field: `routes[${i}].action`, message: `'${route.action}' is not a declared action: add it to ACTIONS with its least role, or use one that exists` });
      }
      const k = key(method, route.path);
      if (routes.has(k)) issues.push({ field: `routes[${i}]`, message: `${k} is declared twice: keep one declaration per route` });
      routes.set(k, { ...route, method: method as HttpMethod });
    });
    if (issues.length > 0) throw new ValidationError("route table", issues);
    this.#routes = routes;
  }

  /** The action a route performs; undefined for an undeclared route, which must be refused. */
  actionFor(method: string, path: string): Action | typeof PUBLIC | typeof WORKER | undefined {
    const declared = this.#routes.get(key(method, path));
    if (declared !== undefined) return declared.action;
    // HTTP frameworks answer HEAD with the GET handler (fastify adds these routes itself).
    if (method.toUpperCase() === "HEAD") return this.#routes.get(key("GET", path))?.action;
    return undefined;
  }

  coverage(registered: Iterable<RegisteredRoute>): CoverageReport {
    const undeclared: string[] = [];
    const seen = new Set<string>();
    for (const route of registered) {
      for (const method of typeof route.method === "string" ? [route.method] : route.method) {
        const k = key(method, route.url);
        seen.add(k);
        if (method.toUpperCase() === "HEAD") seen.add(key("GET", route.url));
        if (this.actionFor(method, route.url) === undefined) undeclared.push(k);
      }
    }
    const unregistered = [...this.#routes.keys()].filter((k) => !seen.has(k));
    return { undeclared, unregistered };
  }

  /** Throws, listing every registered route that declares no action. */
  assertCovers(registered: Iterable<RegisteredRoute>): void {
    const { undeclared } = this.coverage(registered);
    if (undeclared.length > 0) {
      throw new ValidationError(
        "route table",
        undeclared.map((route) => ({ field: route, message: "route has no declared action: declare it in the route table (an action, or 'public' for probes)" })),
      );
    }
  }

  declarations(): RouteDeclaration[] {
    return [...this.#routes.values()];
  }
}
