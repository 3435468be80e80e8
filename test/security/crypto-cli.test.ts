import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileKeyring, fileKeyVersion, readDecryptedFileToBuffer, rewrapFile, writeEncryptedFile } from "../../runtime/security/crypto/index.ts";
import { runCli } from "../support/cli.ts";


const gpufabric = (...args: string[]) => runCli("keys", ...args);

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "gpufabric-keys-cli-"));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe("gpufabric keys", () => {
  it("init, rotate, list: the keyring under DATA_DIR/keyring, 0600 keys", () => {
    expect(gpufabric("init", "--data-dir", dataDir).code).toBe(0);
    expect(statSync(join(dataDir, "keyring", "v1")).mode & 0o777).toBe(0o600);
    const rotated = gpufabric("rotate", "--data-dir", dataDir, "--json");
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ previous: 1, current: 2, versions: [1, 2] });
    expect(readFileSync(join(dataDir, "keyring", "current"), "utf8").trim()).toBe("v2");
    const list = gpufabric("list", "--data-dir", dataDir);
    expect(list.stdout).toMatch(/v1 {2}0 objects\nv2 {2}\(current\) {2}0 objects\n$/);
  });

  it("retire is refused while an artifact under the data directory uses the version, and allowed after rewrap", async () => {
    expect(gpufabric("init", "--data-dir", dataDir).code).toBe(0);
    const keyring = FileKeyring.open(join(dataDir, "keyring"));
    const context = { tenant: "studio", run: "run-1", objectId: "out.png" };
    mkdirSync(join(dataDir, "artifacts"));
    const artifact = join(dataDir, "artifacts", "out.png");
    await writeEncryptedFile(keyring, context, [Buffer.from("pixels")], artifact);
    expect(gpufabric("rotate", "--data-dir", dataDir).code).toBe(0);

    const refused = gpufabric("retire", "v1", "--data-dir", dataDir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/v1 still protects 1 object, and no agent runs on .+: start it/);
    expect(JSON.parse(gpufabric("list", "--data-dir", dataDir, "--json").stdout).versions).toEqual([
      { version: 1, current: false, objects: 1 },
      { version: 2, current: true, objects: 0 },
    ]);

    keyring.reload();
    expect(await rewrapFile(keyring, context, artifact)).toBe(true);
    expect(await fileKeyVersion(artifact)).toBe(2);
    const retired = gpufabric("retire", "v1", "--data-dir", dataDir);
    expect(retired.code).toBe(0);
    keyring.reload();
    expect(await keyring.versions()).toEqual([2]);
    expect((await readDecryptedFileToBuffer(keyring, context, artifact)).toString()).toBe("pixels");
  });

  it("refuses the current version, bad version names and a missing keyring with a fix", () => {
    expect(gpufabric("init", "--data-dir", dataDir, "--layout", "file", "--keyring", join(dataDir, "ring.json")).code).toBe(0);
    expect(gpufabric("retire", "v1", "--data-dir", dataDir, "--keyring", join(dataDir, "ring.json")).stderr).toMatch(/v1 is the current key version/);
    expect(gpufabric("retire", "one", "--data-dir", dataDir).code).toBe(2);
    const missing = gpufabric("rotate", "--data-dir", join(dataDir, "nowhere"));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no keyring at .*gpufabric keys init/);
    expect(gpufabric("init", "--data-dir", dataDir, "--layout", "zip").code).toBe(2);
  });
});
