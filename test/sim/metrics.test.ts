import { describe, expect, it } from "vitest";
import { median, percentile, summary } from "../../runtime/sim/metrics.ts";

describe("summary statistics", () => {
  it("takes the mean of the two middle values as the median of an even count, the middle one of an odd count", () => {
    // The lower middle value (nearest rank) would say 1.01 here; the median is 1.08.
    expect(median([1.47, 1.0, 1.01, 1.15, 1.2, 1.0, 1.3, 1.01, 1.15, 1.0])).toBeCloseTo(1.08, 10);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it("keeps nearest-rank percentiles for the tails, and summarizes p50, p90 and max", () => {
    const values = [10, 1, 9, 2, 8, 3, 7, 4, 6, 5];
    expect(percentile(values, 90)).toBe(9);
    expect(summary(values)).toEqual({ count: 10, p50: 5.5, p90: 9, max: 10 });
    expect(summary([])).toEqual({ count: 0, p50: null, p90: null, max: null });
  });
});
