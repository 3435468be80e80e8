/**
 * The package as a platform team gets it: `npm pack` (which builds dist/), installed into a fresh platform
 * repo in a temporary folder, then one small platform (a pool, a tier, a segment, a tenant, a workflow
 * deployment) synthesized there
 *  - with cdktf's usual TypeScript setup: its template's tsconfig (CommonJS) and `npx ts-node main.ts`;
 *  - with tsx, in an ES module folder;
 *  - with plain JavaScript, both `require` (CommonJS) and `import` (ES module);
 * and the consumer's main.ts type-checked by `tsc --noEmit` under strict settings, library files included.
 *
 * ts-node needs TypeScript's JavaScript API, which TypeScript 7 (a native compiler) no longer ships: the
 * repo pins typescript 5.9 for it, as a cdktf project must. The strict check runs this repo's TypeScript 7.
 * Installing takes a minute or more (the registry, or npm's cache with --prefer-offline); install scripts are
 * skipped: synthesizing loads no native addon (the agent's SQLite binding is built only where the agent runs).
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../agent/service/harness.ts";
import { consumerFiles } from "./consumer-files.ts";

const TIMEOUT = 900_000;
const own = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
let dir: string;
let repo: string;

function run(command: string, args: readonly string[], cwd: string, env: Record<string, string> = {}): SpawnSyncReturns<string> {
  // The consumer's processes must not take the test suite's GPUFABRIC_FROM_SOURCE: an installed package has no sources.
  const { GPUFABRIC_FROM_SOURCE: _suite, ...inherited } = process.env;
  const result = spawnSync(command, args, { cwd, env: { ...inherited, ...env }, encoding: "utf8", timeout: TIMEOUT });
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} (in ${cwd}) exited ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`.slice(-6000));
  return result;
}

const npm = (args: readonly string[], cwd: string) => run(process.platform === "win32" ? "npm.cmd" : "npm", args, cwd);
const bin = (pkg: string, path: string) => join(repo, "node_modules", pkg, path);

/** Synthesizes with `args` (run by node, in `cwd`) and returns the stack's Terraform JSON. */
function synth(label: string, args: readonly string[], cwd: string): { resource: Record<string, Record<string, { metadata?: unknown }>> } {
  const outdir = join(dir, `out-${label}`);
  const result = run(process.execPath, args, cwd, { CDKTF_OUTDIR: outdir });
  expect(result.stderr).not.toMatch(/error|warning/i);
  return JSON.parse(readFileSync(join(outdir, "stacks", "consumer", "cdk.tf.json"), "utf8"));
}

function expectThePlatform(tf: ReturnType<typeof synth>): void {
  const names = (type: string) =>
    Object.values(tf.resource[type] ?? {}).map((r) => {
      const m = r.metadata as { name?: string } | Array<{ name?: string }> | undefined;
      return Array.isArray(m) ? m[0]?.name : m?.name;
    });
  expect(names("kubernetes_namespace_v1")).toEqual(["gpu-work"]); // the NetworkSegment
  expect(names("kubernetes_network_policy_v1")).toEqual(expect.arrayContaining(["default-deny", "allow-dns"]));
  expect(names("kubernetes_storage_class_v1")).toEqual(["hot"]); // the StorageTier
  expect(names("kubernetes_resource_quota_v1")).toEqual(["l4-gpu-quota"]); // the GpuPool's quota for the Tenant
  expect(names("kubernetes_deployment_v1")).toEqual(["agent"]); // the WorkflowDeployment
  const config = Object.values(tf.resource.kubernetes_config_map_v1 ?? {})[0] as { data: Record<string, string> } | undefined;
  const platform = JSON.parse(config!.data["platform.json"]!) as { deployment: { pool: string }; workflows: Array<{ name: string }>; tenants: Array<{ name: string }> };
  expect(platform.deployment.pool).toBe("l4");
  expect(platform.workflows.map((w) => w.name)).toEqual(["hello"]);
  expect(platform.tenants.map((t) => t.name)).toEqual(["team"]);
}

describe("the packed package in a fresh platform repo", { timeout: TIMEOUT }, () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "gpufabric-packed-"));
    // `npm pack` runs prepare: the tarball holds a build of the sources as they are now.
    const packed = npm(["pack", "--pack-destination", dir, "--json"], REPO_ROOT).stdout;
    const tarball = join(dir, (JSON.parse(packed.slice(packed.indexOf("["))) as Array<{ filename: string }>)[0]!.filename);
    repo = join(dir, "platform");
    mkdirSync(repo);
    const files = consumerFiles({
      gpufabric: `file:${tarball}`,
      cdktf: own.dependencies.cdktf!,
      constructs: own.dependencies.constructs!,
      providerKubernetes: own.dependencies["@cdktf/provider-kubernetes"]!,
      tsx: own.dependencies.tsx!,
      typesNode: own.devDependencies["@types/node"]!,
    });
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(repo, path)), { recursive: true });
      writeFileSync(join(repo, path), text);
    }
    npm(["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"], repo);
  }, TIMEOUT);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("installs the build and no sources", () => {
    const installed = join(repo, "node_modules", "gpufabric");
    expect(existsSync(join(installed, "dist", "constructs", "index.js"))).toBe(true);
    expect(existsSync(join(installed, "dist", "constructs", "index.d.ts"))).toBe(true);
    expect(existsSync(join(installed, "dist", "runtime", "agent", "store", "sqlite-worker.cjs"))).toBe(true);
    expect(readdirSync(installed).sort()).toEqual(["README.md", "bin", "dist", "package.json"]);
  });

  it("synthesizes with cdktf's TypeScript template (ts-node, CommonJS)", () => {
    expectThePlatform(synth("ts-node", [bin("ts-node", "dist/bin.js"), "main.ts"], repo));
  });

  it("synthesizes with tsx (an ES module repo)", () => {
    expectThePlatform(synth("tsx", [bin("tsx", "dist/cli.mjs"), "main.ts"], join(repo, "esm")));
  });

  it("synthesizes with plain JavaScript, CommonJS and ES module", () => {
    expectThePlatform(synth("cjs", ["main.js"], repo));
    expectThePlatform(synth("esm", ["main.js"], join(repo, "esm")));
  });

  it("type-checks the consumer with tsc --noEmit: the template's settings, and strict ones over every library file", () => {
    run(process.execPath, [bin("typescript", "bin/tsc"), "--noEmit", "-p", "tsconfig.json"], repo);
    const ownTsc = join(dirname(createRequire(import.meta.url).resolve("typescript/package.json")), "bin", "tsc");
    run(process.execPath, [ownTsc, "-p", "tsconfig.json"], join(repo, "esm"));
  });

  it("runs the store's worker thread from the build (its .cjs entry beside the compiled module)", async () => {
    // The tarball's dist/ is this repo's, written by npm pack's prepare; the consumer's install has no native
    // SQLite binding (install scripts skipped), this repo's has. From the sources the .cjs would load tsx.
    const compiled = (await import(pathToFileURL(join(REPO_ROOT, "dist", "runtime", "agent", "store", "index.js")).href)) as typeof import("../../runtime/agent/store/index.ts");
    const data = join(dir, "store");
    mkdirSync(data);
    const store = await compiled.openStore(compiled.parseDatabase(undefined, data), { durability: "normal" });
    try {
      expect(await store.listRuns("team")).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("loads gpufabric/aws only with its optional peer @cdktf/provider-aws: without it, an error naming the install; with it, an EKS node group for a GpuPool", () => {
    const esm = join(repo, "esm");
    const script = join(esm, "aws.mjs");
    writeFileSync(
      script,
      [
        'import { App, TerraformStack } from "cdktf";',
        'import { FabricStack, GpuPool } from "gpufabric";',
        'import { EksGpuNodePool } from "gpufabric/aws";',
        // Loaded after gpufabric/aws has run, so that without the provider its own error is the one thrown.
        'const { AwsProvider } = await import("@cdktf/provider-aws/lib/provider/index.js");',
        "const app = new App();",
        'const aws = new TerraformStack(app, "aws");',
        'new AwsProvider(aws, "aws", { region: "eu-central-1" });',
        'const nodes = new EksGpuNodePool(aws, "train", { clusterName: "c", nodeRoleArn: "arn:aws:iam::1:role/n", subnetIds: ["s"], instanceTypes: ["g6.xlarge"], maxNodes: 2 });',
        'const pool = new GpuPool(new FabricStack(app, "consumer"), "pool", { nodePool: nodes });',
        "app.synth();",
        "console.log(JSON.stringify({ model: pool.model.name, selector: pool.nodeSelector }));",
      ].join("\n"),
    );
    // The consumer installed no provider: the entry point says which package and version to install.
    const { GPUFABRIC_FROM_SOURCE: _suite, ...inherited } = process.env;
    const missing = spawnSync(process.execPath, [script], { cwd: esm, encoding: "utf8", env: { ...inherited, CDKTF_OUTDIR: join(dir, "out-aws") } });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("gpufabric/aws needs the optional peer dependency @cdktf/provider-aws@'~20.1.0', which is not installed: run npm install @cdktf/provider-aws@'~20.1.0'");
    // This repo's copy of the provider, linked in rather than installed (it is hundreds of MB); --preserve-symlinks
    // makes it resolve cdktf from the consumer's node_modules, as an installed copy would.
    symlinkSync(join(REPO_ROOT, "node_modules", "@cdktf", "provider-aws"), join(repo, "node_modules", "@cdktf", "provider-aws"), "dir");
    const loaded = run(process.execPath, ["--preserve-symlinks", script], esm, { CDKTF_OUTDIR: join(dir, "out-aws") });
    expect(JSON.parse(loaded.stdout)).toEqual({ model: "L4-24GB", selector: { "nvidia.com/gpu.product": "NVIDIA-L4" } });
    const tf = JSON.parse(readFileSync(join(dir, "out-aws", "stacks", "aws", "cdk.tf.json"), "utf8")) as { resource: Record<string, Record<string, { ami_type?: string }>> };
    expect(Object.values(tf.resource.aws_eks_node_group!)[0]!.ami_type).toBe("AL2023_x86_64_NVIDIA");
  });

  it("runs the installed CLI from its build", () => {
    const cli = bin("gpufabric", "bin/gpufabric.mjs");
    expect(run(process.execPath, [cli, "--help"], repo).stdout).toMatch(/^ {2}check \[options\] <path>/m);
    synth("check", ["main.js"], repo);
    expect(run(process.execPath, [cli, "check", join(dir, "out-check")], repo).stdout).toMatch(/0 errors/);
  });
});
