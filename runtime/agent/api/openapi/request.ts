/**
 * A route's checked request, read through the registry. A handler names its route ("METHOD path") and
 * gets its parameters, query, headers and body parsed with the registry's schemas for that route: it has
 * no schema of its own to pass, so a route cannot validate with a schema /openapi.json does not show.
 */
import type { FastifyRequest } from "fastify";
import type { z } from "zod";
import { issuesFromZod } from "../../../config/errors.ts";
import { ApiError } from "../../service/api-error.ts";
import { ROUTE_SCHEMAS, type RouteKey } from "./registry.ts";

type Entry<K extends RouteKey> = (typeof ROUTE_SCHEMAS)[K];
type Parsed<E, P extends string> = E extends { readonly [key in P]: infer S extends z.ZodType } ? z.output<S> : undefined;

export interface CheckedRequest<K extends RouteKey> {
  readonly params: Parsed<Entry<K>, "params">;
  readonly query: Parsed<Entry<K>, "query">;
  readonly headers: Parsed<Entry<K>, "headers">;
  readonly body: Parsed<Entry<K>, "body">;
}

const PARTS = ["params", "query", "headers", "body"] as const;

/**
 * Parses each part of the request the registry has a schema for, in the order params, query, headers,
 * body; the first part that fails answers 400 (see apiErrorFromZod). `only`: the parts to check here, when
 * another step checks the rest with the same registered schema (a submission's body, parsed off the event
 * loop when it is large).
 */
export function parseRequest<K extends RouteKey>(request: FastifyRequest, key: K, only: readonly (typeof PARTS)[number][] = PARTS): CheckedRequest<K> {
  if (`${request.method} ${request.routeOptions.url}` !== key && !(request.method === "HEAD" && `GET ${request.routeOptions.url}` === key)) {
    // A handler naming another route's schemas is a programming error, caught by the route's first test.
    throw new Error(`parseRequest: the handler of ${request.method} ${request.routeOptions.url} asked for the schemas of ${key}`);
  }
  const entry = ROUTE_SCHEMAS[key] as Partial<Record<(typeof PARTS)[number], z.ZodType>>;
  const out: Record<string, unknown> = {};
  for (const part of only) {
    const schema = entry[part];
    if (schema === undefined) continue;
    const input = part === "body" ? (request.body ?? {}) : (request[part] ?? {});
    const parsed = schema.safeParse(input);
    if (!parsed.success) throw apiErrorFromZod(parsed.error, part);
    out[part] = parsed.data;
  }
  return out as unknown as CheckedRequest<K>;
}

/**
 * A failed parse as the API's 400 `invalid-request`. Parameters, query and headers answer with their first
 * problem, `<field>: <what is wrong and the fix>`, the field being the name the client used (a check may
 * name it itself with `params: { field }`, e.g. a header's canonical `Idempotency-Key`); a body answers
 * with every problem, each with its path, as a submission's validation does.
 */
export function apiErrorFromZod(error: z.ZodError, part: "params" | "query" | "headers" | "body"): ApiError {
  if (part === "body") return ApiError.fromIssues(issuesFromZod(error));
  const issue = error.issues[0]!;
  const named = (issue as { params?: { field?: unknown } }).params?.field;
  const field = typeof named === "string" ? named : issue.path.map(String).join(".") || `(${part})`;
  return new ApiError(400, "invalid-request", `${field}: ${issue.message}`, field);
}
