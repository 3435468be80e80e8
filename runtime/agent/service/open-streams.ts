/**
 * The long-lived answers a server holds open (event streams), ended when it closes: a client left open (a
 * dashboard tab) never holds up a stop or a rolling restart. Fastify's close waits for every request in
 * flight, and a stream is one until its client goes.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";

const byServer = new WeakMap<object, Set<() => void>>();

/** Ends every stream the server holds before its close waits for requests in flight. */
export function endStreamsOnClose(app: FastifyInstance): void {
  const open = new Set<() => void>();
  byServer.set(app, open);
  app.addHook("preClose", async () => {
    for (const end of [...open]) end();
  });
}

/** Registers a stream's `end`; call the returned function once the stream has ended for another reason. */
export function holdStream(request: FastifyRequest, end: () => void): () => void {
  const open = byServer.get(request.server);
  open?.add(end);
  return () => open?.delete(end);
}
