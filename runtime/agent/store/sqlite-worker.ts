/** The thread of ThreadedSqliteStore: one SqliteStore, answering the calls in the order they arrive. */
import { parentPort, workerData } from "node:worker_threads";
import { openSqliteStore, type SqliteStore } from "./sqlite-store.ts";
import { encodeError, STORE_METHODS, type StoreCall, type StoreReply, type ThreadedStoreOptions } from "./sqlite-thread.ts";

const { file, options } = workerData as { file: string; options: ThreadedStoreOptions };
const port = parentPort!;
const methods = new Set<string>(STORE_METHODS);
let store: SqliteStore | undefined;
let openError: unknown;
try {
  // This thread has nothing else to do while the WAL syncs: SQLite syncs inside COMMIT (synchronous=FULL at
  // `full`), saving a hop to the thread pool per group; calls arriving meanwhile queue up and form the next group.
  store = openSqliteStore(file, { ...options, syncInCommit: true });
} catch (err) {
  // Reported to each call (the first one is the agent's recovery at start), as the in-thread store would throw.
  openError = err;
}

port.on("message", (call: StoreCall) => {
  const reply = (message: StoreReply) => port.postMessage(message);
  const fail = (err: unknown) => reply({ id: call.id, ok: false, error: encodeError(err) });
  if (openError !== undefined) return call.method === "close" ? reply({ id: call.id, ok: true, value: undefined }) : fail(openError);
  if (!methods.has(call.method)) return fail(new Error(`the store has no method '${String(call.method)}'`));
  let result: Promise<unknown>;
  try {
    result = (store![call.method] as (...args: unknown[]) => Promise<unknown>).apply(store, call.args as unknown[]);
  } catch (err) {
    return fail(err);
  }
  result.then((value) => reply({ id: call.id, ok: true, value }), fail);
});
