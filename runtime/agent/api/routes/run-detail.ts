/** What `GET /v1/runs/:runId` answers: the run's view with its attempts' phases, read from its events. */
import type { EventRecord, RunDetail } from "../../store/types.ts";
import type { HttpParts } from "../parts.ts";
import { runView } from "../views.ts";

const EVENT_PAGE = 5000;
/** A run's events are read whole up to this many (a 200-stage run with retries has a few thousand). */
const MAX_EVENTS = 100_000;

export async function runDetailView(parts: Pick<HttpParts, "store" | "loop" | "devices">, detail: RunDetail) {
  const events: EventRecord[] = [];
  for (let after = 0; events.length < MAX_EVENTS; ) {
    const page = (await parts.store.eventsSince(detail.run.tenant, detail.run.id, after, EVENT_PAGE)) ?? [];
    events.push(...page);
    if (page.length < EVENT_PAGE) break;
    after = page[page.length - 1]!.id;
  }
  return runView(detail, parts.loop, parts.devices, events);
}
