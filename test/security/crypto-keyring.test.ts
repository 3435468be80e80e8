import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileKeyring, KeyringError, KeyUnavailableError, openValue, sealValue } from "../../runtime/security/crypto/index.ts";

const ctx = { tenant: "studio", run: "run-1", objectId: "inputs" };
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "gpufabric-keyring-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("FileKeyring (directory layout, as a Secret mount presents it)", () => {
  it("creates v1 with 0600 key files and a current pointer", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    expect(await keyring.versions()).toEqual([1]);
    expect(await keyring.currentVersion()).toBe(1);
    expect(statSync(join(dir, "keyring", "v1")).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(join(dir, "keyring", "v1"), "utf8").trim(), "base64")).toHaveLength(32);
    expect(readFileSync(join(dir, "keyring", "current"), "utf8").trim()).toBe("v1");
  });

  it("rotate adds a version and makes it current; a reopened keyring sees it", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    expect(await keyring.rotate()).toBe(2);
    expect(await keyring.rotate()).toBe(3);
    const reopened = FileKeyring.open(join(dir, "keyring"));
    expect(await reopened.versions()).toEqual([1, 2, 3]);
    expect(await reopened.currentVersion()).toBe(3);
    expect(statSync(join(dir, "keyring", "v3")).mode & 0o777).toBe(0o600);
  });

  it("ignores the dot-entries of a Secret mount", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    writeFileSync(join(dir, "keyring", "..data"), "not a key", { mode: 0o644 });
    keyring.reload();
    expect(await keyring.versions()).toEqual([1]);
  });

  it("refuses a key file readable by others, saying how to fix it", () => {
    FileKeyring.create(join(dir, "keyring"));
    chmodSync(join(dir, "keyring", "v1"), 0o604);
    expect(() => FileKeyring.open(join(dir, "keyring"))).toThrow(/readable by others \(mode 0604\).*chmod 600/);
    chmodSync(join(dir, "keyring", "v1"), 0o644);
    expect(() => FileKeyring.open(join(dir, "keyring"))).toThrow(KeyringError);
  });

  it("reads a group-readable key file only when root owns it, as a Secret volume with fsGroup presents it", () => {
    FileKeyring.create(join(dir, "keyring"));
    chmodSync(join(dir, "keyring", "v1"), 0o440);
    const ownedByRoot = statSync(join(dir, "keyring", "v1")).uid === 0;
    if (ownedByRoot) expect(FileKeyring.open(join(dir, "keyring")).layout).toBe("directory");
    else expect(() => FileKeyring.open(join(dir, "keyring"))).toThrow(/readable by its group \(mode 0440\) and not owned by root/);
  });

  it("refuses keys that are not 32 bytes of base64, and a current version without a key", () => {
    const keyring = join(dir, "keyring");
    FileKeyring.create(keyring);
    writeFileSync(join(keyring, "v2"), Buffer.alloc(16).toString("base64"), { mode: 0o600 });
    expect(() => FileKeyring.open(keyring)).toThrow(/v2: a key must be 32 random bytes in base64/);
    rmSync(join(keyring, "v2"));
    writeFileSync(join(keyring, "current"), "v7");
    expect(() => FileKeyring.open(keyring)).toThrow(/current version v7 has no key/);
    writeFileSync(join(keyring, "current"), "seven");
    expect(() => FileKeyring.open(keyring)).toThrow(/'seven' is not a key version/);
  });

  it("names the missing keyring and how to create one", () => {
    expect(() => FileKeyring.open(join(dir, "absent"))).toThrow(/no keyring at .*gpufabric keys init/);
  });

  it("refuses to create over an existing keyring", () => {
    FileKeyring.create(join(dir, "keyring"));
    expect(() => FileKeyring.create(join(dir, "keyring"))).toThrow(/already exists/);
  });
});

describe("FileKeyring (single JSON file)", () => {
  it("creates, rotates and retires in one 0600 file", async () => {
    const file = join(dir, "keyring.json");
    const keyring = FileKeyring.create(file, "file");
    expect(keyring.layout).toBe("file");
    await keyring.rotate();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(readFileSync(file, "utf8")) as { current: string; keys: Record<string, string> };
    expect(doc.current).toBe("v2");
    expect(Object.keys(doc.keys)).toEqual(["v1", "v2"]);
    await keyring.retire(1, 0);
    expect(await FileKeyring.open(file).versions()).toEqual([2]);
  });

  it("refuses a world-readable keyring file and malformed documents, naming the field", () => {
    const file = join(dir, "keyring.json");
    FileKeyring.create(file, "file");
    chmodSync(file, 0o644);
    expect(() => FileKeyring.open(file)).toThrow(/readable by others/);
    writeFileSync(file, JSON.stringify({ current: "v1", keys: { v1: 42 } }), { mode: 0o600 });
    chmodSync(file, 0o600);
    expect(() => FileKeyring.open(file)).toThrow(/keys\.v1 must be a base64 string/);
    writeFileSync(file, "{not json");
    expect(() => FileKeyring.open(file)).toThrow(/is not JSON/);
  });
});

describe("retire", () => {
  it("refuses while objects still use the version (count or callback), and refuses the current version", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    await keyring.rotate();
    await expect(keyring.retire(1, 3)).rejects.toThrow(/v1 still protects 3 objects: rewrap/);
    await expect(keyring.retire(1, async (v) => (v === 1 ? 1 : 0))).rejects.toThrow(/still protects 1 object:/);
    await expect(keyring.retire(2, 0)).rejects.toThrow(/v2 is the current key version/);
    await expect(keyring.retire(9, 0)).rejects.toThrow(KeyUnavailableError);
    await expect(keyring.retire(1, -1)).rejects.toThrow(/non-negative integer/);
    expect(await keyring.versions()).toEqual([1, 2]);
    await keyring.retire(1, () => 0);
    expect(await keyring.versions()).toEqual([2]);
  });

  it("a retired version can no longer open what it wrapped", async () => {
    const keyring = FileKeyring.create(join(dir, "keyring"));
    const sealed = await sealValue(keyring, Buffer.from("a prompt"), ctx);
    await keyring.rotate();
    await keyring.retire(1, 0);
    await expect(openValue(keyring, sealed, ctx)).rejects.toThrow(/key version 1 is not in the keyring \(it holds v2\)/);
  });

  it("picks up a version another process added (a Secret update) when it meets it", async () => {
    const path = join(dir, "keyring");
    const writer = FileKeyring.create(path);
    const reader = FileKeyring.open(path);
    await writer.rotate();
    const sealed = await sealValue(writer, Buffer.from("x"), ctx);
    expect((await openValue(reader, sealed, ctx)).toString()).toBe("x");
  });
});

describe("a running process sees rotations made elsewhere", () => {
  it("wraps new objects under the version another process made current", async () => {
    const path = join(dir, "keyring");
    const agent = FileKeyring.create(path);
    expect(await agent.currentVersion()).toBe(1);
    await FileKeyring.open(path).rotate();
    expect(await agent.currentVersion()).toBe(2);
    const sealed = await sealValue(agent, Buffer.from("new prompt"), ctx);
    expect(sealed.readUInt32BE(6)).toBe(2);
  });
});
