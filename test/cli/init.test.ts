/**
 * `gpufabric init`: the real CLI scaffolds a platform repo in a temporary directory, and that repo then
 * synthesizes, validates its workflow and runs it with `gpufabric dev`, as a platform team would after
 * `npm install`. Instead of installing from a registry, the scaffold's node_modules links this checkout's
 * dependencies and a `gpufabric` package whose exports are this checkout's (see linkDependencies).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCAFFOLD_NAMES } from "../../cli/init/templates.ts";
import { SynthesizedStack, type Json } from "../support/synth.ts";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(REPO_ROOT, "bin", "gpufabric.mjs");
const REPO_PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
  exports: Record<string, unknown>;
};
const SCAFFOLD_FILES = ["package.json", "cdktf.json", "tsconfig.json", "main.ts", "workflows/hello.yaml", ".gitignore", "README.md"];
// Every gpufabric spawned here runs the sources under test, never a build that may be older.
const ENV = { ...process.env, GPUFABRIC_FROM_SOURCE: "1", CHECKPOINT_DISABLE: "1" };

const root = mkdtempSync(join(tmpdir(), "gpufabric-init-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function gpufabric(cwd: string, args: string[], bin = BIN, timeout = 120_000) {
  const run = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: ENV, timeout });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The file an export condition tree leads to (`import`, then `default`), as written in package.json. */
function exportTarget(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry;
  if (entry === null || typeof entry !== "object") return undefined;
  const conditions = entry as Record<string, unknown>;
  return exportTarget(conditions.import ?? conditions.default ?? conditions.node);
}

/**
 * What `npm install` would give the scaffold, from this checkout: a link to each of its dependencies, and
 * node_modules/gpufabric, a package with this checkout's package.json whose exports lead to the sources
 * (a compiled `./dist/x.js` becomes `./x.ts`, which tsx runs): the test exercises the code under test
 * whether or not a build exists, while the packed-package test covers the build itself.
 */
function linkDependencies(dir: string, gpufabricAs: "sources" | "package" = "sources"): void {
  const modules = join(dir, "node_modules");
  mkdirSync(modules);
  for (const entry of readdirSync(join(REPO_ROOT, "node_modules"))) {
    if (entry !== "gpufabric") symlinkSync(join(REPO_ROOT, "node_modules", entry), join(modules, entry));
  }
  if (gpufabricAs === "package") {
    symlinkSync(REPO_ROOT, join(modules, "gpufabric"));
    return;
  }
  const pkgDir = join(modules, "gpufabric");
  mkdirSync(pkgDir);
  for (const entry of ["bin", "cli", "constructs", "policies", "runtime"]) symlinkSync(join(REPO_ROOT, entry), join(pkgDir, entry));
  const exports: Record<string, string> = {};
  for (const [subpath, entry] of Object.entries(REPO_PACKAGE.exports)) {
    const target = exportTarget(entry);
    if (target === undefined || !/\.(ts|js)$/.test(target)) continue;
    const source = target.replace(/^\.\/dist\//, "./").replace(/\.js$/, ".ts");
    if (!existsSync(join(REPO_ROOT, source))) throw new Error(`export '${subpath}' leads to ${target}, whose source ${source} is missing`);
    exports[subpath] = source;
  }
  writeFileSync(join(pkgDir, "package.json"), JSON.stringify({ ...REPO_PACKAGE, exports, main: undefined, types: undefined }, null, 2));
}

/** Whether dist/ holds a build no older than any source (bin/gpufabric.mjs's rule), so that its .d.ts describe the code under test. */
function currentBuild(): boolean {
  const stamp = join(REPO_ROOT, "dist", ".build-stamp");
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  return ["constructs", "runtime", "policies", "cli"].every((dir) =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true }).every((name) => (statSync(join(REPO_ROOT, dir, String(name)), { throwIfNoEntry: false })?.mtimeMs ?? 0) <= built),
  );
}

describe("gpufabric init", () => {
  const repo = join(root, "acme");
  let init: ReturnType<typeof gpufabric>;
  beforeAll(() => {
    init = gpufabric(root, ["init", "acme"]);
  });

  it("writes a platform repo: package.json on this gpufabric, cdktf.json with tsx, main.ts, a workflow, .gitignore, README", () => {
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain("Created platform 'acme' in acme");
    for (const file of SCAFFOLD_FILES) expect(existsSync(join(repo, file)), file).toBe(true);

    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8"));
    expect(pkg.name).toBe("acme");
    expect(pkg.type).toBe("module");
    expect(pkg.dependencies).toEqual({
      gpufabric: `^${REPO_PACKAGE.version}`,
      cdktf: REPO_PACKAGE.dependencies.cdktf,
      constructs: REPO_PACKAGE.dependencies.constructs,
      "@cdktf/provider-kubernetes": REPO_PACKAGE.dependencies["@cdktf/provider-kubernetes"],
    });
    expect(Object.keys(pkg.devDependencies)).toEqual(expect.arrayContaining(["tsx", "cdktf-cli", "typescript"]));
    expect(pkg.scripts.synth).toBe("gpufabric synth");

    expect(JSON.parse(readFileSync(join(repo, "cdktf.json"), "utf8"))).toMatchObject({ language: "typescript", app: "npx tsx main.ts", output: "cdktf.out" });

    const main = readFileSync(join(repo, "main.ts"), "utf8");
    expect(main).toMatch(/from "gpufabric";/);
    for (const construct of ["FabricStack", "GpuPool", "StorageTier", "NetworkSegment", "Tenant", "WorkflowDeployment", "CompliancePolicy"]) {
      expect(main).toContain(`new ${construct}(`);
    }

    const ignored = readFileSync(join(repo, ".gitignore"), "utf8").split("\n");
    for (const line of ["node_modules/", "cdktf.out/", ".gpufabric/", "keyring", "tokens/", "audit-signing/", "*.pem"]) expect(ignored).toContain(line);

    const workflow = parseYaml(readFileSync(join(repo, "workflows/hello.yaml"), "utf8"));
    expect(workflow).toMatchObject({ apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "hello" } });

    const readme = readFileSync(join(repo, "README.md"), "utf8");
    for (const step of ["npx gpufabric synth", "npx cdktf deploy acme", "gpufabric runs submit --ref hello --watch", "gpufabric tokens create team --subject team-ci"]) expect(readme).toContain(step);
  });

  describe("the scaffold, its dependencies linked", () => {
    const pkgBin = join(repo, "node_modules", "gpufabric", "bin", "gpufabric.mjs");
    beforeAll(() => {
      if (init.code === 0) linkDependencies(repo);
    });

    it("synthesizes (cdktf.json's npx tsx main.ts) one stack with the pool, tier, segment, tenant quota and agent", () => {
      const synth = gpufabric(repo, ["synth", "--json"], pkgBin);
      expect(synth.code, synth.stderr).toBe(0);
      const summary = JSON.parse(synth.stdout) as { stacks: Array<{ name: string; file: string }> };
      expect(summary.stacks.map((s) => s.name)).toEqual(["acme"]);
      const file = join(repo, "cdktf.out", "stacks", "acme", "cdk.tf.json");
      expect(summary.stacks[0]!.file).toBe(file);
      const stack = new SynthesizedStack(JSON.parse(readFileSync(file, "utf8")));
      const n = SCAFFOLD_NAMES;

      expect(stack.names("kubernetes_namespace_v1")).toEqual([n.segment]);
      expect(stack.names("kubernetes_network_policy_v1")).toContain("default-deny");
      expect(stack.names("kubernetes_priority_class_v1").sort()).toEqual([`${n.pool}-batch`, `${n.pool}-interactive`]);
      const quota = stack.find("kubernetes_resource_quota_v1", `${n.pool}-gpu-quota`, n.segment).config;
      expect(quota.spec.hard).toMatchObject({ "requests.nvidia.com/gpu": "4" });
      const storageClass = stack.find("kubernetes_storage_class_v1", n.tier).config;
      expect(storageClass.parameters).toMatchObject({ encrypted: "true" });

      const agent = stack.find("kubernetes_deployment_v1", n.deployment, n.segment).config;
      const podSpec: Json = agent.spec.template.spec;
      expect(podSpec.automount_service_account_token).toBe(false);
      const config = JSON.parse(stack.find("kubernetes_config_map_v1", `${n.deployment}-config`, n.segment).config.data["platform.json"]);
      expect(config.platform.name).toBe("acme");
      expect(config.tenants.map((t: Json) => t.name)).toEqual([n.tenant]);
      expect(config.workflows.map((w: Json) => w.name)).toEqual([n.workflow]);
    }, 180_000);

    it("validates its workflow", () => {
      const validate = gpufabric(repo, ["validate", `workflows/${SCAFFOLD_NAMES.workflow}.yaml`], pkgBin);
      expect(validate.code, validate.stderr).toBe(0);
      expect(validate.stdout).toContain("valid native workflow, 2 stages ('hello')");
    });

    it("runs its workflow to the end with gpufabric dev --once", () => {
      const dev = gpufabric(repo, ["dev", "--once", "--json", "--data-dir", join(root, "acme-dev")], pkgBin, 240_000);
      expect(dev.code, dev.stderr).toBe(0);
      const summary = JSON.parse(dev.stdout);
      expect(summary.ok).toBe(true);
      expect(summary.runs).toEqual([expect.objectContaining({ workflow: "hello", tenant: "team", status: "succeeded", artifacts: ["greet/greeting.txt", "shout/shout.txt"] })]);
    }, 300_000);
  });

  // The build's .d.ts are what a platform repo type-checks against; the sources import each other as
  // ./x.ts, which a consumer's tsc refuses. Without a current build (`npm run build`) there is nothing to check.
  it.skipIf(!currentBuild())("type-checks its main.ts against the package's types with npm run typecheck (strict), and catches a wrong prop", () => {
    const typed = gpufabric(root, ["init", "typed"]);
    expect(typed.code, typed.stderr).toBe(0);
    const dir = join(root, "typed");
    linkDependencies(dir, "package");
    const typecheck = () => spawnSync("npm", ["run", "--silent", "typecheck"], { cwd: dir, encoding: "utf8", env: ENV, timeout: 120_000 });
    const clean = typecheck();
    expect(clean.status, `${clean.stdout}${clean.stderr}`).toBe(0);

    const main = readFileSync(join(dir, "main.ts"), "utf8");
    writeFileSync(join(dir, "main.ts"), main.replace("gpusPerNode: 4,", 'gpusPerNode: "4",'));
    const wrong = typecheck();
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toMatch(/main\.ts\(\d+,\d+\): error TS2322/);
  }, 180_000);

  it("refuses a non-empty DIR without --force (exit 2, naming it), writes nothing, and with --force writes beside what is there", () => {
    const dir = join(root, "busy");
    mkdirSync(dir);
    writeFileSync(join(dir, "notes.txt"), "ours\n");
    const refused = gpufabric(root, ["init", "busy"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("DIR 'busy' is not empty (notes.txt)");
    expect(refused.stderr).toContain("--force");
    expect(readdirSync(dir)).toEqual(["notes.txt"]);

    const forced = gpufabric(root, ["init", "busy", "--force", "--json"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ dir, name: "busy", files: SCAFFOLD_FILES, overwritten: [] });
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("ours\n");

    // A second --force names the files it replaced.
    const again = gpufabric(root, ["init", "busy", "--force", "--json"]);
    expect(JSON.parse(again.stdout).overwritten).toEqual(SCAFFOLD_FILES);
  });

  it("takes a directory holding only .git (a fresh git init) as empty", () => {
    const dir = join(root, "fresh");
    mkdirSync(join(dir, ".git"), { recursive: true });
    const result = gpufabric(dir, ["init", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ dir, name: "fresh" });
  });

  it("refuses a name that is not a DNS-1123 label, naming --name and a fix, and writes nothing", () => {
    const bad = gpufabric(root, ["init", "bad-name", "--name", "Acme_Studio"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--name "Acme_Studio" is not a DNS-1123 label`);
    expect(bad.stderr).toContain("e.g. --name acme-studio");
    expect(existsSync(join(root, "bad-name"))).toBe(false);

    // The default, the directory's name, is checked the same way.
    const fromDir = gpufabric(root, ["init", "Acme Studio"]);
    expect(fromDir.code).toBe(2);
    expect(fromDir.stderr).toContain(`--name: the platform name defaults to the directory's name, "Acme Studio"`);
    expect(fromDir.stderr).toContain("e.g. --name acme-studio");
    expect(existsSync(join(root, "Acme Studio"))).toBe(false);

    const named = gpufabric(root, ["init", "Acme Studio", "--name", "acme-studio", "--json"]);
    expect(named.code, named.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(root, "Acme Studio", "package.json"), "utf8")).name).toBe("acme-studio");
  });
});
