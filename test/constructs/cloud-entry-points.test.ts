/**
 * What each entry point loads of the cloud providers: the core (`gpufabric`) none of them, so a team on
 * one cloud, or on-prem, needs none installed; `gpufabric/aws`, `/gcp` and `/azure` only the resource
 * modules their node pools use (a whole provider takes seconds and hundreds of MB to load). Each entry
 * is imported in a fresh Node process, whose module cache then lists what was loaded.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../agent/service/harness.ts";

const PROBE = `
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
await import(process.argv[1]);
const loaded = Object.keys(require.cache).filter((p) => /@cdktf[\\\\/]provider-(aws|google|azurerm)[\\\\/]/.test(p));
console.log(JSON.stringify(loaded.map((p) => p.replace(/^.*node_modules[\\\\/]/, "").replace(/\\\\/g, "/")).sort()));
`;

function providerModulesLoadedBy(entry: string): string[] {
  const { GPUFABRIC_FROM_SOURCE: _suite, ...env } = process.env;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", PROBE, join(REPO_ROOT, entry)], { cwd: REPO_ROOT, env, encoding: "utf8", timeout: 60_000 });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as string[];
}

describe("the entry points' provider modules", { timeout: 120_000 }, () => {
  it("gpufabric loads no cloud provider", () => {
    expect(providerModulesLoadedBy("constructs/index.ts")).toEqual([]);
  });

  it("gpufabric/aws, /gcp and /azure load their node pools' resource modules and nothing else", () => {
    expect(providerModulesLoadedBy("constructs/aws/index.ts")).toEqual(["@cdktf/provider-aws/lib/autoscaling-group-tag/index.js", "@cdktf/provider-aws/lib/eks-node-group/index.js"]);
    expect(providerModulesLoadedBy("constructs/gcp/index.ts")).toEqual(["@cdktf/provider-google/lib/container-node-pool/index.js"]);
    expect(providerModulesLoadedBy("constructs/azure/index.ts")).toEqual(["@cdktf/provider-azurerm/lib/kubernetes-cluster-node-pool/index.js"]);
  });
});
