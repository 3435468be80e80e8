import { describe, expect, it } from "vitest";
import { randomBytesPooled } from "../../runtime/security/crypto/random.ts";

describe("pooled random bytes", () => {
  it("hands out the lengths asked for, never the same bytes twice, across many pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const n = [12, 16, 32][i % 3]!;
      const bytes = randomBytesPooled(n);
      expect(bytes.length).toBe(n);
      const hex = bytes.toString("hex");
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
  });

  it("returns independent buffers (changing one leaves the next draws alone) and serves large requests directly", () => {
    const a = randomBytesPooled(32);
    const copy = Buffer.from(a);
    a.fill(0);
    expect(randomBytesPooled(32).equals(copy)).toBe(false);
    expect(randomBytesPooled(64 * 1024).length).toBe(64 * 1024);
    expect(randomBytesPooled(0).length).toBe(0);
    expect(() => randomBytesPooled(-1)).toThrow(RangeError);
  });

  it("is not all zeros (the pool is filled before it is drawn from)", () => {
    const bytes = Buffer.concat(Array.from({ length: 100 }, () => randomBytesPooled(32)));
    expect(bytes.filter((b) => b !== 0).length).toBeGreaterThan(bytes.length / 2);
  });
});
