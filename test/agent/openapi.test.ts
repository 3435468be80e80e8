/**
 * /openapi.json: a valid OpenAPI 3.1 document served without a token, holding every route of ROUTES with
 * its method and nothing that is not served, built from the very zod schemas the routes validate with.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import type { FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { openApiDocument, openApiPath, pathParameterNames } from "../../runtime/agent/api/openapi/document.ts";
import { COMFY_SCHEMAS, ROUTE_SCHEMAS, routeSchemas, type RouteSchemas } from "../../runtime/agent/api/openapi/registry.ts";
import { apiErrorFromZod, parseRequest } from "../../runtime/agent/api/openapi/request.ts";
import { ROUTES } from "../../runtime/agent/api/routes.ts";
import { PUBLIC } from "../../runtime/security/authz/index.ts";
import { useAgent } from "./service/agent-fixture.ts";

type Operation = {
  operationId: string;
  description: string;
  parameters?: Array<{ name: string; in: string; required: boolean }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
  security: unknown[];
};
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

function operations(doc: Document): Array<{ method: string; path: string; op: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ method: method.toUpperCase(), path, op }))
  );
}

async function expectValid(doc: unknown): Promise<void> {
  const result = await new Validator().validate(doc as Record<string, unknown>);
  expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)?.slice(0, 4000)).toEqual([]);
  expect(result.valid).toBe(true);
}

describe("the OpenAPI document, as built", () => {
  const doc = openApiDocument() as unknown as Document;

  it("is a valid OpenAPI 3.1 document", async () => {
    expect(doc.openapi).toBe("3.1.0");
    await expectValid(doc);
    // The validator does refuse a broken document (a path parameter without its template).
    const broken = JSON.parse(JSON.stringify(doc)) as Document;
    broken.paths["/v1/runs/{runId}"]!.get!.parameters![0]!.in = "nowhere";
    expect((await new Validator().validate(broken as unknown as Record<string, unknown>)).valid).toBe(false);
  });

  it("documents every route of ROUTES with its method, and nothing else", () => {
    const documented = operations(doc).map((o) => `${o.method} ${o.path}`).sort();
    const declared = ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`).sort();
    expect(documented).toEqual(declared);
    expect(new Set(documented).size).toBe(documented.length);
    expect(documented).toContain("GET /openapi.json");
    const ids = operations(doc).map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("has no registry entry for a route ROUTES does not declare (a stale or misspelt key)", () => {
    const declared = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));
    expect(Object.keys(ROUTE_SCHEMAS).filter((key) => !declared.has(key))).toEqual([]);
    for (const key of Object.keys(COMFY_SCHEMAS)) {
      const [method, path] = key.split(" ") as [string, string];
      expect(declared.has(`${method} /comfyui${path}`) && declared.has(`${method} /comfyui/api${path}`), key).toBe(true);
    }
  });

  it("gives every path template's parameters, public routes no security, the others bearer or session and their role", () => {
    for (const route of ROUTES) {
      const op = doc.paths[openApiPath(route.path)]![route.method.toLowerCase()]!;
      const pathParams = (op.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
      expect(pathParams.sort(), `${route.method} ${route.path}`).toEqual(pathParameterNames(route.path).sort());
      if (route.action === PUBLIC) expect(op.security).toEqual([]);
      else expect(op.security.length).toBeGreaterThan(0);
    }
    const cancel = doc.paths["/v1/runs/{runId}/cancel"]!.post!;
    expect(cancel.security).toEqual([{ bearer: [] }, { session: [] }]);
    expect(cancel.description).toMatch(/runs:cancel.*least role `submitter`.*another subject's object: role `admin`/is);
  });

  it("documents each route's query parameters, headers and body as the zod schemas that check them", () => {
    let checked = 0;
    for (const route of ROUTES) {
      const entry = routeSchemas(route.method, route.path);
      if (entry === undefined) continue;
      const op = doc.paths[openApiPath(route.path)]![route.method.toLowerCase()]!;
      const named = (where: string) => (op.parameters ?? []).filter((p) => p.in === where).map((p) => p.name).sort();
      const keys = (schema: RouteSchemas["query"]) => Object.keys(schema?.shape ?? {}).sort();
      expect(named("query"), `${route.method} ${route.path}`).toEqual(keys(entry.query));
      expect(named("header"), `${route.method} ${route.path}`).toEqual(keys(entry.headers));
      if (entry.body !== undefined) {
        const { $schema: _, ...schema } = z.toJSONSchema(entry.body, { target: "draft-2020-12", io: "input", unrepresentable: "any" });
        expect(op.requestBody!.content["application/json"]!.schema).toEqual(schema);
      } else expect(op.requestBody).toBeUndefined();
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
    // The run events' `after` and the submission's Idempotency-Key, from their schemas.
    expect(doc.paths["/v1/runs/{runId}/events"]!.get!.parameters!.map((p) => `${p.in}:${p.name}`)).toEqual(["path:runId", "query:after", "header:last-event-id"]);
    expect(doc.paths["/v1/runs"]!.post!.parameters!.map((p) => `${p.in}:${p.name}`)).toEqual(["header:idempotency-key"]);
  });

  it("shows a change to a route's schema: a new query parameter appears in the document", () => {
    const entry = ROUTE_SCHEMAS["GET /v1/runs/:runId/stages/:stageId/logs"] as RouteSchemas;
    const before = entry.query!;
    try {
      (entry as { query: RouteSchemas["query"] }).query = before.extend({ tail: z.string().optional() });
      const changed = openApiDocument() as unknown as Document;
      const query = changed.paths["/v1/runs/{runId}/stages/{stageId}/logs"]!.get!.parameters!.filter((p) => p.in === "query").map((p) => p.name);
      expect(query.sort()).toEqual(["attempt", "tail"]);
    } finally {
      (entry as { query: RouteSchemas["query"] }).query = before;
    }
  });

  it("still documents a route of ROUTES that has no registry entry, from its declaration", async () => {
    const extra = { method: "GET", path: "/v1/widgets/:widgetId/parts/:partId", action: "gpus:read" } as const;
    const withExtra = openApiDocument([...ROUTES, extra]) as unknown as Document;
    const op = withExtra.paths["/v1/widgets/{widgetId}/parts/{partId}"]!.get!;
    expect(op.parameters!.map((p) => `${p.in}:${p.name}:${p.required}`)).toEqual(["path:widgetId:true", "path:partId:true"]);
    expect(op.security).toEqual([{ bearer: [] }, { session: [] }]);
    expect(op.description).toMatch(/gpus:read.*least role `viewer`/s);
    await expectValid(withExtra);
  });

  it("a handler can only validate with its own route's registered schemas", () => {
    // Why this holds by construction: a handler never passes a schema, only its route's key, and
    // parseRequest takes the schemas from the registry under that key. The key is typed as a key of
    // ROUTE_SCHEMAS (a route with no entry does not compile), and at run time it must be the route being
    // served, so no handler can check its input against a schema the document does not show.
    const request = { method: "GET", routeOptions: { url: "/v1/runs/:runId" }, params: { runId: "r1" }, query: {}, headers: {} } as unknown as FastifyRequest;
    expect(parseRequest(request, "GET /v1/runs/:runId").params.runId).toBe("r1");
    expect(() => parseRequest(request, "POST /v1/runs/:runId/cancel")).toThrow(/asked for the schemas of POST \/v1\/runs\/:runId\/cancel/);
    // @ts-expect-error: a route that is not in the registry has no schemas to validate with.
    expect(() => parseRequest(request, "GET /v1/unregistered")).toThrow();
  });

  it("turns a failed check into the API's 400 naming the field and the fix", () => {
    const request = (headers: Record<string, string>, query: Record<string, string> = {}) =>
      ({ method: "GET", routeOptions: { url: "/v1/runs/:runId/events" }, params: { runId: "r1" }, query, headers }) as unknown as FastifyRequest;
    const check = (req: FastifyRequest) => {
      try {
        parseRequest(req, "GET /v1/runs/:runId/events");
      } catch (err) {
        return (err as { body(): unknown }).body();
      }
      return expect.unreachable("the request was accepted");
    };
    expect(check(request({ "last-event-id": "x" }))).toEqual({
      error: { code: "invalid-request", field: "Last-Event-ID", message: `Last-Event-ID: must be the id of an event (a whole number from 0 to ${Number.MAX_SAFE_INTEGER}), or 0 for the whole stream` },
    });
    expect(check(request({}, { after: "-1" }))).toMatchObject({ error: { code: "invalid-request", field: "after" } });
    const bad = z.object({ limit: z.number() }).safeParse({ limit: "x" });
    expect(apiErrorFromZod(bad.error!, "query").body()).toMatchObject({ error: { field: "limit", message: expect.stringMatching(/^limit: /) } });
  });
});

describe("GET /openapi.json of a running agent", () => {
  const fixture = useAgent({ devices: [{ id: "gpu-0", node: "n1", memoryMiB: 24_576 }] });

  it("answers without a token with the valid document of every declared route", async () => {
    const res = await fetch(`${fixture.agent.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const doc = (await res.json()) as Document;
    await expectValid(doc);
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it("serves every documented operation (no 'no route' answer), so the document names only served routes", async () => {
    // The other direction holds at start: the agent refuses to start when it registers a route that
    // ROUTES does not declare (RouteTable.assertCovers), and the document holds every route of ROUTES.
    const doc = (await (await fetch(`${fixture.agent.url}/openapi.json`)).json()) as Document;
    const missing: string[] = [];
    for (const { method, path } of operations(doc)) {
      const url = `${fixture.agent.url}${path.replace(/\{[^}]+\}/g, "x")}`;
      const res = await fetch(url, { method, ...(method === "POST" && { headers: { "content-type": "application/json" }, body: "{}" }) });
      const text = await res.text();
      if (res.status === 404 && text.includes('"no route ')) missing.push(`${method} ${path}`);
    }
    expect(missing).toEqual([]);
  });
});
