/**
 * Reads started while the page boots. The shell first asks who is logged in (GET /ui/session); the page's
 * own data does not depend on that answer, so the first read of the page the address names starts beside it
 * instead of after it, saving one round trip on every cold load. A prefetched answer is handed out once
 * and only while fresh; a failed one (not logged in yet) is read again the ordinary way, which is also
 * where a 401 sends the page to the login form.
 */
import { getJson, request } from "../api.ts";
import { queryString } from "./format.ts";

const FRESH_MS = 10_000;
const early = new Map<string, { at: number; answer: Promise<unknown> }>();

export function prefetchJson(path: string): void {
  const answer = request(path, { quiet401: true }).then((res) => res.json());
  // Never an unhandled rejection: whoever takes it decides what a failure means.
  answer.catch(() => undefined);
  early.set(path, { at: Date.now(), answer });
}

/** getJson, answered by the boot-time read of the same path when there is a fresh one. */
export function getJsonPrefetched<T>(path: string): Promise<T> {
  const hit = early.get(path);
  early.delete(path);
  if (hit === undefined || Date.now() - hit.at > FRESH_MS) return getJson<T>(path);
  return (hit.answer as Promise<T>).catch(() => getJson<T>(path));
}

/** The runs list reads PAGE_SIZE rows a page. */
export const RUNS_PAGE_SIZE = 50;

/** The path the runs page reads for `filters` and `cursor` (the boot-time read must spell it the same). */
export function runsListPath(filters: Readonly<Record<string, string>>, cursor: string | null): string {
  return `/v1/runs${queryString({ ...filters, limit: RUNS_PAGE_SIZE, cursor })}`;
}

export function runDetailPath(id: string): string {
  return `/v1/runs/${encodeURIComponent(id)}`;
}
