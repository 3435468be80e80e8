/**
 * LISTEN/NOTIFY as a wake-up hint. Writes that make stages ready, or place attempts for workers, notify
 * a channel when they commit; a listener polls then instead of at its next tick. Polling stays the truth:
 * a notification may be lost (no listener connected at that moment, a connection dropped), so the
 * listener keeps polling on its own period, and after reconnecting it is woken once for every channel,
 * since it cannot know what it missed.
 */
import pg from "pg";
import { channel, type Wake } from "./sql.ts";

export interface Wakeups {
  /** Stops listening and closes the connection. */
  close(): Promise<void>;
  /** Whether the listening connection is up now. */
  readonly connected: boolean;
  /** Settles once the first LISTEN is in place. */
  readonly listening: Promise<void>;
}

const WAKES: readonly Wake[] = ["ready", "placed"];

/**
 * `onWake` gets the channel's meaning and the notification's payload (a `tenant/run id` for an accepted
 * run; empty otherwise, and after a reconnection, when it cannot know what it missed).
 */
export function listen(url: string, schema: string, onWake: (what: Wake, payload: string) => void, options: { retryMs?: number } = {}): Wakeups {
  const names = new Map(WAKES.map((w) => [channel(schema, w), w]));
  let client: pg.Client | undefined;
  let closed = false;
  let connected = false;
  let timer: NodeJS.Timeout | undefined;
  let backoff = options.retryMs ?? 100;
  let markListening: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => (markListening = resolve));

  const connect = async (first: boolean): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: url });
    client = c;
    c.on("notification", (n) => {
      const what = names.get(n.channel);
      if (what) onWake(what, n.payload ?? "");
    });
    // A dropped connection (server restart, network) reconnects with a growing pause, up to 5 s.
    const retry = () => {
      if (client !== c) return;
      client = undefined;
      connected = false;
      c.end().catch(() => undefined);
      if (closed) return;
      timer = setTimeout(() => void connect(false), backoff);
      timer.unref();
      backoff = Math.min(backoff * 2, 5000);
    };
    c.on("error", retry);
    c.on("end", retry);
    try {
      await c.connect();
      for (const name of names.keys()) await c.query(`LISTEN ${pg.escapeIdentifier(name)}`);
    } catch {
      retry();
      return;
    }
    if (closed) {
      await c.end().catch(() => undefined);
      return;
    }
    connected = true;
    markListening();
    backoff = options.retryMs ?? 100;
    if (!first) for (const w of WAKES) onWake(w, "");
  };
  void connect(true);

  return {
    listening,
    get connected() {
      return connected;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      connected = false;
      await c?.end().catch(() => undefined);
    },
  };
}
