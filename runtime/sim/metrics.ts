/** Summary statistics the benchmark reports. */

/** Nearest-rank percentile (p in 0..100) of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Jain's fairness index: 1 when all values are equal, 1/n when one takes everything. */
export function jainIndex(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  let sum = 0;
  let squares = 0;
  for (const v of values) {
    sum += v;
    squares += v * v;
  }
  return squares === 0 ? null : (sum * sum) / (values.length * squares);
}

/** The median: the middle value of an odd count, the mean of the two middle values of an even one; null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Count, median, nearest-rank p90 and maximum of a suite's values. */
export function summary(values: readonly number[]): { count: number; p50: number | null; p90: number | null; max: number | null } {
  return { count: values.length, p50: median(values), p90: percentile(values, 90), max: values.length === 0 ? null : Math.max(...values) };
}

/** Rounds for stable, readable JSON. */
export function round(value: number | null, digits = 3): number | null {
  if (value === null || !Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
