/**
 * The SQL of `Store.listRuns` for both stores: a tenant's runs newest first, filtered, paged by keyset
 * (created_at, id) so that a page deep in 10,000 runs costs what the first one does, with each run's
 * stages counted by status in one grouped query over the page's ids.
 */
import { RUN_COLUMNS } from "./rows.ts";
import type { RunListOptions, StageCounts } from "./types.ts";

export interface ListQuery {
  readonly text: string;
  readonly values: unknown[];
}

/**
 * `placeholder(n)`: how the dialect writes the n-th parameter (`?` for SQLite, `$n` for PostgreSQL);
 * `collate`: what orders ids byte-wise (PostgreSQL's default collation is not byte order).
 */
export function listRunsQuery(tenant: string, options: RunListOptions, limit: number, placeholder: (n: number) => string, collate = ""): ListQuery {
  const values: unknown[] = [tenant];
  const p = (value: unknown) => {
    values.push(value);
    return placeholder(values.length);
  };
  const where = [`tenant = ${placeholder(1)}`];
  if (options.status !== undefined) where.push(`status = ${p(options.status)}`);
  if (options.workflow !== undefined) where.push(`workflow = ${p(options.workflow)}`);
  if (options.priority !== undefined) where.push(`priority = ${p(options.priority)}`);
  if (options.ids !== undefined) where.push(options.ids.length === 0 ? "1 = 0" : `id IN (${options.ids.map((id) => p(id)).join(", ")})`);
  if (options.before !== undefined) {
    // Each parameter once, in order: SQLite's `?` cannot be named twice.
    const older = p(options.before.createdAt);
    const same = p(options.before.createdAt);
    where.push(`(created_at < ${older} OR (created_at = ${same} AND id${collate} < ${p(options.before.id)}))`);
  }
  const text = `SELECT ${RUN_COLUMNS} FROM runs WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id${collate} DESC LIMIT ${p(limit)}`;
  return { text, values };
}

export function stageCountsQuery(runIds: readonly string[], placeholder: (n: number) => string): ListQuery {
  return {
    text: `SELECT run_id, status, COUNT(*) AS n FROM stages WHERE run_id IN (${runIds.map((_, i) => placeholder(i + 1)).join(", ")}) GROUP BY run_id, status`,
    values: [...runIds],
  };
}

/** Folds (run, status, count) rows into each run's counts: "running" holds every stage on a GPU (placed, running, sealing). */
export function foldStageCounts(rows: ReadonlyArray<{ run_id: string; status: string; n: number | string }>): Map<string, StageCounts> {
  const counts = new Map<string, { total: number; succeeded: number; running: number; failed: number }>();
  for (const row of rows) {
    const c = counts.get(row.run_id) ?? { total: 0, succeeded: 0, running: 0, failed: 0 };
    const n = Number(row.n);
    c.total += n;
    if (row.status === "succeeded") c.succeeded += n;
    else if (row.status === "failed") c.failed += n;
    else if (row.status === "placed" || row.status === "running" || row.status === "sealing") c.running += n;
    counts.set(row.run_id, c);
  }
  return counts;
}

export const NO_STAGES: StageCounts = { total: 0, succeeded: 0, running: 0, failed: 0 };
