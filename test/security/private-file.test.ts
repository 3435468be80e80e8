import { describe, expect, it } from "vitest";
import { keyFileProblem } from "../../runtime/security/crypto/private-file.ts";

describe("keyFileProblem: who may read a key file", () => {
  const AGENT_UID = 10001;
  it.each([
    [0o600, AGENT_UID],
    [0o400, AGENT_UID],
    [0o400, 0],
    [0o440, 0], // a Secret volume with fsGroup: root-owned, read through the group
  ])("accepts mode %s owned by uid %s", (mode, uid) => {
    expect(keyFileProblem("v1", { mode, uid })).toBeUndefined();
  });

  it.each([
    [0o644, 0, /readable by others \(mode 0644\)/],
    [0o604, AGENT_UID, /readable by others/],
    [0o440, AGENT_UID, /readable by its group \(mode 0440\) and not owned by root: run 'chmod 600 v1'/],
    [0o640, AGENT_UID, /readable by its group/],
    [0o460, 0, /writable or executable by its group/],
    [0o450, 0, /writable or executable by its group/],
  ])("refuses mode %s owned by uid %s", (mode, uid, message) => {
    expect(keyFileProblem("v1", { mode, uid })).toMatch(message);
  });
});
