/** `gpufabric check` refuses options it does not know with a message that names the option and its choices. */
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.ts";

describe("gpufabric check options", () => {
  it("suggests the pack a misspelt --pack meant, lists the known packs, and exits 2 (usage)", () => {
    const result = runCli("check", "--pack", "hippa", "cdktf.out");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--pack: unknown pack 'hippa'; did you mean 'hipaa'?");
    expect(result.stderr).toMatch(/known packs: gpu-baseline, hipaa, soc2, gdpr-residency/);
    expect(result.stderr).not.toContain("options is invalid");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("names each bad option, and offers no suggestion for a pack name far from any", () => {
    const result = runCli("check", "--pack", "pci,soc-2", "--format", "sarf", "cdktf.out");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--pack: unknown pack 'pci' (known packs:");
    expect(result.stderr).toContain("--pack: unknown pack 'soc-2'; did you mean 'soc2'?");
    expect(result.stderr).toContain("--format: unknown format 'sarf'; did you mean 'sarif'?");
  });
});
