/** GET /openapi.json: the API's OpenAPI 3.1 document (public, as a client needs it before it has a token). */
import type { FastifyInstance } from "fastify";
import { openApiDocument } from "./document.ts";

export function registerOpenApiRoute(app: FastifyInstance): void {
  // Built once: the routes and their schemas are fixed for the life of the process.
  let document: string | undefined;
  app.get("/openapi.json", async (_request, reply) => {
    document ??= JSON.stringify(openApiDocument());
    return reply.header("content-type", "application/json; charset=utf-8").header("cache-control", "no-cache").send(document);
  });
}
