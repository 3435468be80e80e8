/**
 * The agent's OpenAPI 3.1 document, built from ROUTES (every declared route, so none can be left out) and
 * the route-schema registry (the zod schemas the routes validate with, turned into JSON Schema 2020-12 by
 * zod itself, so the document cannot drift from the checks).
 */
import { z } from "zod";
import { ACTIONS, isAction, type ActionSpec } from "../../../security/authz/actions.ts";
import { PUBLIC, WORKER, type RouteDeclaration } from "../../../security/authz/index.ts";
import { ROUTES } from "../routes.ts";
import { routeSchemas, type ObjectSchema, type RouteSchemas } from "./registry.ts";

type Json = Record<string, unknown>;

/** The API's error shape (see ../../service/api-error.ts). */
export const ApiErrorSchema = z.object({
  error: z.object({
    code: z.string().meta({ description: "a stable code, e.g. invalid-request, not-found, unauthenticated" }),
    message: z.string().meta({ description: "what is wrong and how to fix it" }),
    field: z.string().optional().meta({ description: "the request field at fault" }),
    rule: z.string().optional().meta({ description: "the id of the run-time rule that refused a submission" }),
    issues: z.array(z.object({ field: z.string(), message: z.string() })).optional().meta({ description: "every problem of a validation" }),
  }),
});

/** The session cookie the dashboard signs in with (POST /ui/session). */
export const SESSION_COOKIE = "gf_session";

/** `/v1/runs/:runId` → `/v1/runs/{runId}`; a trailing wildcard `*` (static assets) → `{path}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}").replace(/\*$/, "{path}");
}

/** The names of a path template's parameters, in order (`*` is named `path`). */
export function pathParameterNames(path: string): string[] {
  return [...openApiPath(path).matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
}

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  // `unrepresentable: "any"`: a check zod cannot express (a refinement, a transform's output) is shown
  // as what it accepts on input; the refinement's own message still reaches the client.
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  return rest;
}

function parametersOf(schema: ObjectSchema | undefined, where: "path" | "query" | "header"): Json[] {
  if (schema === undefined) return [];
  const object = jsonSchema(schema, "input");
  const properties = (object.properties ?? {}) as Record<string, Json>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" && { description }),
      schema: rest,
    };
  });
}

function roleText(action: RouteDeclaration["action"]): string {
  if (action === PUBLIC) return "Public: no credential needed.";
  if (action === WORKER) return "For the workers of a cluster: a worker's own token (`Authorization: Bearer <worker token>`); tenants' tokens are refused.";
  if (!isAction(action)) return `Action \`${action}\`.`;
  const spec: ActionSpec = ACTIONS[action];
  const others = spec.othersRole === undefined ? "" : ` On another subject's object: role \`${spec.othersRole}\`.`;
  return `Action \`${action}\` (${spec.description}): least role \`${spec.role}\`.${others}`;
}

function operation(route: RouteDeclaration, entry: RouteSchemas | undefined): Json {
  const declaredParams = parametersOf(entry?.params, "path");
  const names = new Set(declaredParams.map((p) => p.name));
  // Every parameter of the template is documented, from the schema where the registry has one.
  const pathParams = [
    ...declaredParams,
    ...pathParameterNames(route.path)
      .filter((n) => !names.has(n))
      .map((name) => ({ name, in: "path", required: true, schema: { type: "string" }, ...(name === "path" && { description: "the rest of the path" }) })),
  ];
  const parameters = [...pathParams, ...parametersOf(entry?.query, "query"), ...parametersOf(entry?.headers, "header")];
  const status = String(entry?.status ?? 200);
  const success: Json = { description: entry?.summary ?? "success" };
  if (entry?.response !== undefined) success.content = { "application/json": { schema: jsonSchema(entry.response, "output") } };
  else if (entry?.contentType !== undefined) success.content = { [entry.contentType]: {} };
  const responses: Json = { [status]: success };
  for (const [code, doc] of Object.entries(entry?.responses ?? {})) {
    responses[code] = {
      description: doc.description,
      ...(doc.schema !== undefined && { content: { [doc.contentType ?? "application/json"]: { schema: jsonSchema(doc.schema, "output") } } }),
    };
  }
  responses.default = { $ref: "#/components/responses/Error" };
  const secured = route.action !== PUBLIC;
  return {
    operationId: `${route.method.toLowerCase()}${openApiPath(route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: entry?.summary ?? `${route.method} ${route.path}`,
    ...(entry?.tags !== undefined && { tags: [...entry.tags] }),
    description: [entry?.description, roleText(route.action)].filter(Boolean).join("\n\n"),
    ...(parameters.length > 0 && { parameters }),
    ...(entry?.body !== undefined && { requestBody: { required: true, content: { "application/json": { schema: jsonSchema(entry.body, "input") } } } }),
    responses,
    // Public routes need nothing; a worker's route takes only the bearer (a worker has no session).
    security: !secured ? [] : route.action === WORKER ? [{ bearer: [] }] : [{ bearer: [] }, { session: [] }],
  };
}

/** The OpenAPI 3.1 document of `routes` (default: every route of the agent). */
export function openApiDocument(routes: readonly RouteDeclaration[] = ROUTES, version = "1"): Json {
  const paths: Record<string, Json> = {};
  const ids = new Set<string>();
  for (const route of routes) {
    const path = openApiPath(route.path);
    const op = operation(route, routeSchemas(route.method, route.path));
    // Ids must be unique: `/ui` and `/ui/` spell the same words, so a later one gets a number.
    let id = op.operationId as string;
    for (let n = 2; ids.has(id); n++) id = `${op.operationId as string}${n}`;
    ids.add(id);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = { ...op, operationId: id };
  }
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    info: {
      title: "gpufabric agent API",
      version,
      description: "Submit and follow GPU workflow runs. Every route but the probes needs a credential; a tenant sees only its own runs.",
    },
    paths,
    components: {
      schemas: { ApiError: jsonSchema(ApiErrorSchema, "output") },
      responses: { Error: { description: "an error, in the API's error shape", content: { "application/json": { schema: { $ref: "#/components/schemas/ApiError" } } } } },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "an API token: `Authorization: Bearer <token>`" },
        session: {
          type: "apiKey",
          in: "cookie",
          name: SESSION_COOKIE,
          description: "the dashboard's session (POST /ui/session); a request that is not GET or HEAD also needs header `x-csrf-token`",
        },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
  };
}
