import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isMemoryFileSystem, mountOf, probeStorage } from "../../bench/storage-probe.ts";

const MOUNTS = [
  "/dev/vda / ext4 rw,relatime 0 0",
  "tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0",
  "tmpfs /var/lib/agent tmpfs rw 0 0",
  "/dev/vdb /var/lib/agent/tier xfs rw 0 0",
  "/dev/vdc /mnt/with\\040space ext4 rw 0 0",
].join("\n");

describe("the storage probe behind bench:agent's durable rates", () => {
  it("finds the mount a path is on: the longest mount point that holds it, not a name that merely starts the same", () => {
    expect(mountOf("/var/lib/agent/data", MOUNTS)).toEqual({ mountPoint: "/var/lib/agent", fileSystem: "tmpfs" });
    expect(mountOf("/var/lib/agent/tier/x", MOUNTS)).toEqual({ mountPoint: "/var/lib/agent/tier", fileSystem: "xfs" });
    expect(mountOf("/var/lib/agentx", MOUNTS)).toEqual({ mountPoint: "/", fileSystem: "ext4" });
    expect(mountOf("/mnt/with space/d", MOUNTS)).toEqual({ mountPoint: "/mnt/with space", fileSystem: "ext4" });
    expect(mountOf("/anything", "")).toEqual({ mountPoint: "/", fileSystem: "unknown" });
  });

  it("calls tmpfs and ramfs memory, by mount type or by statfs magic", () => {
    expect(isMemoryFileSystem("tmpfs", 0xef53)).toBe(true);
    expect(isMemoryFileSystem("unknown", 0x01021994)).toBe(true);
    expect(isMemoryFileSystem("unknown", 0x858458f6)).toBe(true);
    expect(isMemoryFileSystem("ext4", 0xef53)).toBe(false);
  });

  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("times write+fsync on the directory's own file system and leaves nothing behind", () => {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-probe-"));
    dirs.push(dir);
    const probe = probeStorage(dir, 20);
    expect(probe.samples).toBe(20);
    expect(probe.fsyncP50Ms).toBeGreaterThan(0);
    expect(probe.fsyncP99Ms).toBeGreaterThanOrEqual(probe.fsyncP50Ms);
    expect(probe.statfsType).toBe(`0x${statfsSync(dir).type.toString(16)}`);
    expect(probe.durable).toBe(!isMemoryFileSystem(probe.fileSystem, statfsSync(dir).type));
    expect(probe.note === null).toBe(probe.durable);
    expect(readdirSync(dir)).toEqual([]);
  });

  // Where the machine has a tmpfs at /dev/shm (Linux usually does), a probe there must refuse the word durable.
  // Decided here from the tmpfs magic itself, not through the code under test (which could then skip its own test).
  const shm = existsSync("/dev/shm") && statfsSync("/dev/shm").type === 0x01021994;
  it.skipIf(!shm)("refuses to call a tmpfs figure durable, and says why", () => {
    const dir = mkdtempSync("/dev/shm/gpufabric-probe-");
    dirs.push(dir);
    const probe = probeStorage(dir, 5);
    expect(probe.durable).toBe(false);
    expect(probe.fileSystem).toBe("tmpfs");
    expect(probe.note).toMatch(/tmpfs \(memory\): an fsync there writes nothing to a disk, so no rate measured on it is a durable one/);
  });
});
