/**
 * `gpufabric init`'s work: picks and checks the platform's name, refuses to write over someone's files,
 * and writes the templates of ./templates.ts.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { packageRoot } from "../../runtime/config/package.ts";
import { DNS_LABEL } from "../../runtime/config/schema.ts";
import { suggestDnsLabel } from "../../constructs/validation.ts";
import { CliError, EXIT } from "../errors.ts";
import { scaffoldFiles, type ScaffoldVersions } from "./templates.ts";

export interface ScaffoldOptions {
  /** The platform's name; defaults to the directory's name. */
  readonly name?: string;
  /** Write into a directory that already holds files, replacing the scaffold's own. */
  readonly force?: boolean;
}

export interface ScaffoldResult {
  readonly dir: string;
  readonly name: string;
  /** Paths written, relative to `dir`. */
  readonly files: readonly string[];
  /** Of those, the ones that existed before (only with `force`). */
  readonly overwritten: readonly string[];
}

/** Writes a platform repo into `dir` (created when missing). Throws a CliError (exit 2) on a bad name or a non-empty dir. */
export function scaffold(dir: string, options: ScaffoldOptions = {}): ScaffoldResult {
  const target = resolve(dir);
  const name = platformName(target, options.name);
  checkTarget(dir, target, options.force === true);
  const files = scaffoldFiles({ name, versions: scaffoldVersions() });
  const overwritten: string[] = [];
  for (const file of files) {
    const path = join(target, file.path);
    if (existsSync(path)) overwritten.push(file.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, file.content);
  }
  return { dir: target, name, files: files.map((f) => f.path), overwritten };
}

/** The name given with --name, else the directory's; either must be a DNS-1123 label (it names Kubernetes objects). */
export function platformName(target: string, given: string | undefined): string {
  if (given !== undefined) {
    if (!DNS_LABEL.test(given)) {
      throw new CliError(`--name ${JSON.stringify(given)} is not a DNS-1123 label: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. --name ${suggestLabel(given)}`, EXIT.usage);
    }
    return given;
  }
  const fromDir = basename(target);
  if (!DNS_LABEL.test(fromDir)) {
    throw new CliError(
      `--name: the platform name defaults to the directory's name, ${JSON.stringify(fromDir)}, which is not a DNS-1123 label (lowercase letters, digits and '-'): pass one, e.g. --name ${suggestLabel(fromDir)}`,
      EXIT.usage,
    );
  }
  return fromDir;
}

/** A DNS-1123 label close to `text`, for the error messages' "e.g.". */
export function suggestLabel(text: string): string {
  return suggestDnsLabel(text, "my-platform");
}

/**
 * Refuses a path that is a file, or a directory holding anything but `.git` unless `force`: init after
 * `git init` is the usual start, but a repo with files of its own needs the user's say-so.
 */
function checkTarget(dir: string, target: string, force: boolean): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new CliError(`DIR '${dir}' is a file, not a directory: give a new or empty directory`, EXIT.usage);
  const entries = readdirSync(target).filter((entry) => entry !== ".git");
  if (entries.length > 0 && !force) {
    const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? `, and ${entries.length - 5} more` : "");
    throw new CliError(
      `DIR '${dir}' is not empty (${shown}): give a new or empty directory, or pass --force to write the scaffold's files there, replacing any of the same name`,
      EXIT.usage,
    );
  }
}

/**
 * The versions the platform repo depends on: this package's own version of gpufabric, and the ranges
 * this package itself is built and tested with for the rest, so that both sides of the import agree.
 */
export function scaffoldVersions(): ScaffoldVersions {
  const pkg = ownPackageJson();
  const range = (dep: string, fallback: string) => pkg.dependencies?.[dep] ?? pkg.devDependencies?.[dep] ?? fallback;
  return {
    gpufabric: `^${pkg.version}`,
    cdktf: range("cdktf", "^0.21.0"),
    cdktfCli: range("cdktf-cli", "^0.21.0"),
    constructs: range("constructs", "^10.4.0"),
    providerKubernetes: range("@cdktf/provider-kubernetes", "^12.0.0"),
    tsx: range("tsx", "^4.20.0"),
    typescript: range("typescript", "^5.9.0"),
    typesNode: range("@types/node", "^20.0.0"),
  };
}

interface PackageJson {
  readonly version: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

function ownPackageJson(): PackageJson {
  return JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as PackageJson;
}
