import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileKeyring, scanKeyVersionUsage, sealValue, usageOf } from "../../runtime/security/crypto/index.ts";

describe("scanKeyVersionUsage on fields stored as base64 text", () => {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-usage-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("counts each base64 envelope under its key version, wherever it sits in the file, and nothing in text that only looks alike", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    const context = { tenant: "studio", run: "r1", objectId: "run.document" };
    const v1 = (await sealValue(keyring, Buffer.from("prompt"), context)).toString("base64");
    await keyring.rotate();
    const v2 = (await sealValue(keyring, Buffer.from("inputs"), context)).toString("base64");
    const data = join(dir, "data");
    rmSync(data, { recursive: true, force: true });
    mkdirSync(data);
    // A database-like file: the envelopes at odd offsets, past a 1 MiB block boundary, next to look-alike text.
    const filler = "x".repeat(1024 * 1024 - 5);
    writeFileSync(join(data, "agent.db"), `{"$sealed":"${v1}"}${filler}{"$sealed":"${v2}"} R0ZFVgEBnotbase64!! R0ZFVgE`);
    const usage = await scanKeyVersionUsage(data);
    expect(usageOf(usage, 1)).toBe(1);
    expect(usageOf(usage, 2)).toBe(1);
    expect(usageOf(usage, 3)).toBe(0);
  });
});
