import { describe, expect, it } from "vitest";
import { ValidationError } from "../../runtime/config/errors.ts";
import { parseQuantityMiB, tryParseQuantityMiB } from "../../runtime/graph/index.ts";

describe("parseQuantityMiB", () => {
  it.each([
    ["24Gi", 24 * 1024],
    ["512Mi", 512],
    ["1Ti", 1024 * 1024],
    ["1Pi", 1024 ** 3],
    ["1Ei", 1024 ** 4],
    ["2048Ki", 2],
    ["1.5Gi", 1536],
    ["1048576", 1],
    ["0", 0],
    [".5Gi", 512],
    ["+1Gi", 1024],
    ["1e9", Math.ceil(1e9 / 2 ** 20)],
    ["80G", Math.ceil(80e9 / 2 ** 20)],
    ["1M", 1], // 1,000,000 bytes rounds up to a whole MiB
    ["1k", 1],
    ["2T", Math.ceil(2e12 / 2 ** 20)],
    ["1P", Math.ceil(1e15 / 2 ** 20)],
    ["1E", Math.ceil(1e18 / 2 ** 20)],
    [" 8Gi ", 8192],
  ])("%s is %d MiB", (text, mib) => {
    expect(parseQuantityMiB(text)).toBe(mib);
  });

  it.each(["", "Gi", "24 Gi", "24gi", "24GiB", "abc", "1.2.3Gi", "10m", "1e", "0x10"])("refuses %j with a fix-it message", (text) => {
    expect(() => parseQuantityMiB(text, "resources.vram")).toThrow(ValidationError);
    const result = tryParseQuantityMiB(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(/24Gi|empty/);
  });

  it("names the field and suggests the binary suffix for a common mistake", () => {
    try {
      parseQuantityMiB("24GB", "spec.stages[0].resources.vram");
      expect.unreachable();
    } catch (err) {
      const issue = (err as ValidationError).issues[0]!;
      expect(issue.field).toBe("spec.stages[0].resources.vram");
      expect(issue.message).toContain("did you mean '24Gi'?");
    }
  });

  it("refuses negative quantities", () => {
    const result = tryParseQuantityMiB("-1Gi");
    expect(result).toEqual({ ok: false, message: expect.stringContaining("negative") });
  });
});
