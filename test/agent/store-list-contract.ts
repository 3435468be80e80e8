/**
 * Store.listRuns in the Store contract (run by describeStoreContract for every store): filters, keyset
 * paging newest first without gaps or repeats, stage counts, and tenant scoping.
 */
import { expect, it } from "vitest";
import type { ListedRun, NewRun, Store } from "../../runtime/agent/store/index.ts";
import { diamondRun } from "./fixtures/runs.ts";

function runOf(tenant: string, i: number): NewRun {
  return { ...diamondRun(tenant), workflow: i % 3 === 0 ? "render" : "diamond", priority: i % 2 === 0 ? "batch" : "interactive" };
}

/** Every page of a listing, following the keyset of each page's last run. */
async function allPages(store: Store, tenant: string, options: Parameters<Store["listRuns"]>[1], pageSize: number): Promise<ListedRun[]> {
  const seen: ListedRun[] = [];
  let before: { createdAt: string; id: string } | undefined;
  for (let pages = 0; pages < 100; pages++) {
    const page = await store.listRuns(tenant, { ...options, limit: pageSize, ...(before && { before }) });
    seen.push(...page);
    if (page.length < pageSize) break;
    const last = page[page.length - 1]!;
    before = { createdAt: last.createdAt, id: last.id };
  }
  return seen;
}

export function listRunsContractCases(getStore: () => Store): void {
  it("lists a tenant's runs newest first, filtered, paged by keyset without gaps or repeats, with stage counts", async () => {
    const store = getStore();
    // Concurrent creation gives runs that share a created_at: the id breaks the tie.
    const created = await Promise.all(Array.from({ length: 45 }, (_, i) => store.createRun(runOf("studio", i))));
    await store.createRun(diamondRun("rival"));
    const ids = created.map((c) => c.run.id);

    const everything = await store.listRuns("studio", { limit: 1000 });
    expect(everything).toHaveLength(45);
    const order = everything.map((r) => [r.createdAt, r.id] as const);
    const sorted = [...order].sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? 1 : -1) : a[0] < b[0] ? 1 : -1));
    expect(order).toEqual(sorted);

    const paged = await allPages(store, "studio", {}, 7);
    expect(paged.map((r) => r.id)).toEqual(everything.map((r) => r.id));
    expect(new Set(paged.map((r) => r.id)).size).toBe(45);

    const renders = await allPages(store, "studio", { workflow: "render" }, 4);
    expect(renders.map((r) => r.id).sort()).toEqual(ids.filter((_, i) => i % 3 === 0).sort());
    const interactiveRenders = await store.listRuns("studio", { workflow: "render", priority: "interactive", limit: 1000 });
    expect(interactiveRenders.map((r) => r.id).sort()).toEqual(ids.filter((_, i) => i % 3 === 0 && i % 2 === 1).sort());
    expect(await store.listRuns("studio", { status: "running" })).toEqual([]);
    expect(await store.listRuns("studio", { workflow: "nope" })).toEqual([]);

    // Stage counts: one stage on a GPU, one succeeded.
    const target = ids[0]!;
    const a = await store.markPlaced({ runId: target, stageId: "a", gpus: ["g"], explanation: null });
    await store.markRunning(a.id, { pid: 1, workspace: "/ws" });
    const [listed] = await store.listRuns("studio", { ids: [target], stageCounts: true });
    expect(listed!.stageCounts).toEqual({ total: 4, succeeded: 0, running: 1, failed: 0 });
    await store.markSealing(a.id);
    await store.markSucceeded(a.id, { artifacts: [] });
    const [after] = await store.listRuns("studio", { ids: [target], stageCounts: true });
    expect(after!.stageCounts).toEqual({ total: 4, succeeded: 1, running: 0, failed: 0 });
    expect(after!.status).toBe("running");
    expect((await store.listRuns("studio", { status: "running" })).map((r) => r.id)).toEqual([target]);
    // Without asking, no counts are read.
    expect((await store.listRuns("studio", { ids: [target] }))[0]!.stageCounts).toBeUndefined();
  });

  it("never lists another tenant's runs, even by id", async () => {
    const store = getStore();
    const { run } = await store.createRun(diamondRun("rival"));
    expect(await store.listRuns("studio", { ids: [run.id] })).toEqual([]);
    expect(await store.listRuns("studio", { ids: [] })).toEqual([]);
    expect((await store.listRuns("rival", { ids: [run.id], stageCounts: true }))[0]!.stageCounts).toEqual({ total: 4, succeeded: 0, running: 0, failed: 0 });
  });
}
