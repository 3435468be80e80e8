/** Small shared pieces of the pages: error box, status badge, data loading and live-update hooks. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { getJson, messageOf } from "./api.ts";

export function ErrorBox({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" data-testid="error">
      {error}
    </p>
  );
}

export function StatusBadge({ status, testid }: { status: string; testid?: string }) {
  return (
    <span class={`badge st-${status}`} data-testid={testid} data-status={status}>
      {status}
    </span>
  );
}

export function SimulatedBadge() {
  return (
    <span class="badge simulated" title="no real GPU: a simulated device">
      simulated
    </span>
  );
}

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{title}</h1>
        {actions ? <div class="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export interface Loaded<T> {
  readonly data: T | null;
  readonly error: string | null;
  readonly loading: boolean;
  readonly reload: () => void;
}

/** GETs `path` (again whenever it changes, and every `pollMs` when given). */
export function useApi<T>(path: string | null, pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const load = useCallback(() => {
    if (path === null) return;
    const mine = ++seq.current;
    setLoading(true);
    getJson<T>(path)
      .then((d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
      })
      .catch((err) => mine === seq.current && setError(messageOf(err)))
      .finally(() => mine === seq.current && setLoading(false));
  }, [path]);
  useEffect(() => {
    load();
    if (!pollMs) return;
    const timer = setInterval(load, pollMs);
    return () => clearInterval(timer);
  }, [load, pollMs]);
  return { data, error, loading, reload: load };
}

/**
 * Follows a server-sent event stream; `onEvent` gets each event of the named types. EventSource reconnects
 * by itself after a network error; the handler ref keeps the connection open across re-renders. A null url
 * (a finished run) closes it: the server ends a finished run's stream, and EventSource would keep reconnecting.
 */
export function useEventStream(url: string | null, eventNames: string | readonly string[], onEvent: (data: string, type: string) => void): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const names = typeof eventNames === "string" ? eventNames : eventNames.join(",");
  useEffect(() => {
    if (url === null) return;
    const source = new EventSource(url, { withCredentials: true });
    const listener = (e: MessageEvent) => handler.current(String(e.data), e.type);
    for (const name of names.split(",")) source.addEventListener(name, listener as EventListener);
    return () => source.close();
  }, [url, names]);
}

/** Calls `fn` at most once per `ms`, trailing: a burst of events becomes one refetch shortly after it. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const last = useRef(0);
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  return useCallback(() => {
    if (timer.current) return;
    const wait = Math.max(0, last.current + ms - Date.now());
    timer.current = setTimeout(() => {
      timer.current = null;
      last.current = Date.now();
      fnRef.current();
    }, wait);
  }, [ms]);
}

/** Re-renders every `ms` (relative times, running bars). */
export function useNow(ms: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
