/**
 * The run client's config file: named connection profiles, kubectl-context style.
 *
 *   current: prod
 *   profiles:
 *     prod: { url: https://gpufabric.example.internal:8443, tokenFile: ~/.secrets/gpufabric, caFile: /etc/ssl/our-ca.pem }
 *     dev:  { url: http://127.0.0.1:8080, token: gf_… }
 *
 * It may hold tokens, so it is private to its owner: a file the group or others may read is refused with
 * the chmod that fixes it, and the CLI writes it 0600 in a 0700 folder, through a temporary file and a
 * rename so that a crash never leaves half a file.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { CliError, EXIT } from "../errors.ts";

export interface Profile {
  readonly url: string;
  /** The token itself; or */
  readonly token?: string;
  /** a file holding it (private to its owner, as the config file is). */
  readonly tokenFile?: string;
  /** A CA certificate (PEM) the agent's certificate is checked against. */
  readonly caFile?: string;
}

export interface ClientConfig {
  current?: string;
  profiles: Record<string, Profile>;
}

/** Where the config lives: GPUFABRIC_CONFIG, else $XDG_CONFIG_HOME/gpufabric/config.yaml, else ~/.config/gpufabric/config.yaml. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GPUFABRIC_CONFIG) return env.GPUFABRIC_CONFIG;
  const base = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), ".config");
  return join(base, "gpufabric", "config.yaml");
}

/** Why a file holding credentials is not private to its owner (group or others may read or write it), with the fix. */
export function privateFileProblem(file: string, mode: number): string | undefined {
  if (process.platform === "win32" || (mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  return `${file} may be read or changed by its group or others (mode ${octal}) and can hold tokens: run 'chmod 600 ${file}'`;
}

const PROFILE_NAME = /^[a-z0-9]([a-z0-9._-]{0,62})$/;

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) throw new CliError(`profile name '${name}': use lowercase letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit`, EXIT.usage);
  return name;
}

/** The config at `file`, or an empty one when there is none; a readable-by-others or malformed file is refused. */
export function loadConfig(file: string): ClientConfig {
  let stat;
  try {
    stat = lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { profiles: {} };
    throw new CliError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, EXIT.usage);
  }
  // A link would let the permissions checked here be another file's.
  if (stat.isSymbolicLink()) throw new CliError(`${file} is a symbolic link: the client config must be a regular file (point GPUFABRIC_CONFIG at the file itself)`, EXIT.usage);
  const problem = privateFileProblem(file, stat.mode);
  if (problem !== undefined) throw new CliError(problem, EXIT.usage);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, "utf8"));
  } catch (err) {
    throw new CliError(`${file} is not valid YAML (${(err as Error).message.split("\n")[0]}): fix it, or remove it and add the profiles again`, EXIT.usage);
  }
  return validateConfig(file, raw ?? {});
}

function validateConfig(file: string, raw: unknown): ClientConfig {
  const fail = (field: string, problem: string) => new CliError(`${file}: ${field} ${problem}`, EXIT.usage);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw fail("the file", "must be a mapping with 'profiles' and 'current'");
  const { current, profiles = {}, ...rest } = raw as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw fail(unknown[0]!, "is not a setting of the client config: it takes 'current' and 'profiles'");
  if (current !== undefined && typeof current !== "string") throw fail("current", "must be a profile name");
  if (typeof profiles !== "object" || profiles === null || Array.isArray(profiles)) throw fail("profiles", "must map profile names to { url, token | tokenFile, caFile? }");
  const out: Record<string, Profile> = {};
  for (const [name, value] of Object.entries(profiles as Record<string, unknown>)) {
    const at = `profiles.${name}`;
    if (typeof value !== "object" || value === null) throw fail(at, "must be { url, token | tokenFile, caFile? }");
    const { url, token, tokenFile, caFile, ...extra } = value as Record<string, unknown>;
    const extraKeys = Object.keys(extra);
    if (extraKeys.length > 0) throw fail(`${at}.${extraKeys[0]}`, "is not a profile setting: use url, token, tokenFile and caFile");
    if (typeof url !== "string" || url === "") throw fail(`${at}.url`, "is required: the agent's URL, e.g. https://gpufabric.example.internal:8443");
    for (const [key, v] of Object.entries({ token, tokenFile, caFile })) if (v !== undefined && typeof v !== "string") throw fail(`${at}.${key}`, "must be a string");
    if (token !== undefined && tokenFile !== undefined) throw fail(at, "sets both token and tokenFile: keep one");
    out[name] = { url, ...(token !== undefined && { token: token as string }), ...(tokenFile !== undefined && { tokenFile: tokenFile as string }), ...(caFile !== undefined && { caFile: caFile as string }) };
  }
  if (current !== undefined && !(current in out)) throw fail("current", `names '${current}', which is not among the profiles (${Object.keys(out).join(", ") || "none"}): run 'gpufabric profile use NAME'`);
  return { ...(current !== undefined && { current }), profiles: out };
}

/** Writes the config 0600 (its folder 0700 when created), replacing the old file in one rename. */
export function saveConfig(file: string, config: ClientConfig): void {
  const folder = dirname(file);
  if (!existsSync(folder)) mkdirSync(folder, { recursive: true, mode: 0o700 });
  const temporary = join(folder, `.config-${randomBytes(6).toString("hex")}.tmp`);
  const document = { ...(config.current !== undefined && { current: config.current }), profiles: config.profiles };
  try {
    writeFileSync(temporary, stringifyYaml(document), { mode: 0o600, flag: "wx" });
    // The umask cannot widen 0600, but an inherited ACL default could: say it once more.
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw new CliError(`${file} cannot be written (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** What `profile list` shows of a token: never the token, a short fingerprint that tells two apart. */
export function tokenFingerprint(token: string): string {
  return `sha256:${createHash("sha256").update(token).digest("hex").slice(0, 12)}`;
}
