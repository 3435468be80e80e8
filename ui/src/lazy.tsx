/**
 * Pages loaded on demand. The runs list is in the entry bundle (the page most loads land on); every other
 * page is a chunk fetched when first shown, so a runs-page load does not download and compile dagre
 * (the run page's DAG) or uPlot (the GPU charts). `preload` starts a chunk early, beside the session check.
 */
import type { ComponentType, VNode } from "preact";
import { useEffect, useState } from "preact/hooks";
import { messageOf } from "./api.ts";
import { ErrorBox } from "./components.tsx";

export interface LazyPage<P> {
  (props: P): VNode;
  preload(): Promise<void>;
}

export function lazyPage<P>(load: () => Promise<ComponentType<P>>): LazyPage<P> {
  let loaded: ComponentType<P> | null = null;
  let pending: Promise<void> | null = null;
  const preload = () =>
    (pending ??= load().then(
      (component) => {
        loaded = component;
      },
      (err: unknown) => {
        // A failed chunk (the agent restarted with a new build) may be asked for again.
        pending = null;
        throw err;
      }
    ));
  const Lazy = (props: P) => {
    // Whether the first render had the page: if not, the chunk may still arrive before this effect runs
    // (a preload begun at boot), so the effect waits on it regardless and draws once it is there.
    const [ready, setReady] = useState(loaded !== null);
    const [error, setError] = useState<string | null>(null);
    useEffect(() => {
      if (!ready) preload().then(() => setReady(true), (err: unknown) => setError(messageOf(err)));
    }, []);
    if (loaded !== null) {
      const Component = loaded as ComponentType<any>;
      return <Component {...(props as object)} />;
    }
    if (error !== null) return <ErrorBox error={`this page's code did not load (${error}): reload the page`} />;
    return <p class="loading">Loading…</p>;
  };
  return Object.assign(Lazy, { preload });
}
