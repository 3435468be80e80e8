/**
 * Which agent the run client talks to, with which token and CA. Precedence: flags (--url, --token-file,
 * --ca-file) over the environment (GPUFABRIC_URL, GPUFABRIC_TOKEN or GPUFABRIC_TOKEN_FILE,
 * GPUFABRIC_CA_FILE) over the profile (--profile, else GPUFABRIC_PROFILE, else the config's `current`).
 * A profile named with --profile is a flag, so the environment does not override it.
 *
 * A profile's token and CA belong to its URL: when the URL comes from elsewhere and differs, they are not
 * used, so that one agent's token is never sent to another.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { keyFileProblem } from "../../runtime/security/crypto/private-file.ts";
import { isLoopbackHost } from "../comfyui-gateway.ts";
import { CliError, EXIT } from "../errors.ts";
import { configPath, loadConfig, type Profile } from "./profiles.ts";

export interface ConnectionFlags {
  readonly url?: string;
  readonly tokenFile?: string;
  readonly caFile?: string;
  readonly profile?: string;
}

export interface Connection {
  readonly url: URL;
  readonly token: string;
  readonly ca?: Buffer;
  /** Where the URL and the token came from, for messages ("GPUFABRIC_URL", "profile 'prod' in FILE"). */
  readonly source: { readonly url: string; readonly token: string };
}

const HOW_TO_SET = "pass --url and --token-file, set GPUFABRIC_URL and GPUFABRIC_TOKEN, or add a profile ('gpufabric profile add NAME --url URL --token-stdin')";

export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const explicitProfile = flags.profile !== undefined;
  const fromEnv = explicitProfile ? {} : { url: env.GPUFABRIC_URL || undefined, token: env.GPUFABRIC_TOKEN || undefined, tokenFile: env.GPUFABRIC_TOKEN_FILE || undefined, caFile: env.GPUFABRIC_CA_FILE || undefined };
  const profileName = flags.profile ?? (env.GPUFABRIC_PROFILE || undefined);
  // The config is read only when it is needed: a complete environment works beside a broken config file.
  const needProfile = profileName !== undefined || (flags.url ?? fromEnv.url) === undefined || (flags.tokenFile ?? fromEnv.token ?? fromEnv.tokenFile) === undefined;
  const chosen = needProfile ? chooseProfile(profileName, env) : undefined;

  const urlText = flags.url ?? fromEnv.url ?? chosen?.profile.url;
  const urlSource = flags.url !== undefined ? "--url" : fromEnv.url !== undefined ? "GPUFABRIC_URL" : chosen?.label;
  if (urlText === undefined || urlSource === undefined) throw new CliError(`no agent URL: ${HOW_TO_SET}`, EXIT.usage);
  const url = agentUrl(urlText, urlSource);
  // The profile's credentials only for the profile's own agent.
  const profile = chosen !== undefined && sameAgent(chosen.profile.url, url) ? chosen : undefined;

  let token: string | undefined;
  let tokenSource: string | undefined;
  if (flags.tokenFile !== undefined) [token, tokenSource] = [readTokenFile(flags.tokenFile, "--token-file"), `--token-file ${flags.tokenFile}`];
  else if (fromEnv.token !== undefined) [token, tokenSource] = [fromEnv.token.trim(), "GPUFABRIC_TOKEN"];
  else if (fromEnv.tokenFile !== undefined) [token, tokenSource] = [readTokenFile(fromEnv.tokenFile, "GPUFABRIC_TOKEN_FILE"), `GPUFABRIC_TOKEN_FILE ${fromEnv.tokenFile}`];
  else if (profile?.profile.token !== undefined) [token, tokenSource] = [profile.profile.token, profile.label];
  else if (profile?.profile.tokenFile !== undefined) {
    const file = profile.resolvePath(profile.profile.tokenFile);
    [token, tokenSource] = [readTokenFile(file, `${profile.label} tokenFile`), `${profile.label} (tokenFile ${file})`];
  }
  if (token === undefined || tokenSource === undefined) {
    const note = chosen !== undefined && profile === undefined ? ` (${chosen.label} is for ${chosen.profile.url}, not ${url.origin})` : "";
    throw new CliError(`no token for ${url.origin}${note}: ${HOW_TO_SET}`, EXIT.usage);
  }
  if (token === "" || /\s/.test(token)) throw new CliError(`the token from ${tokenSource} is ${token === "" ? "empty" : "not one word"}: give the tenant's API token (gf_…)`, EXIT.usage);

  const caFile = flags.caFile ?? fromEnv.caFile ?? (profile?.profile.caFile !== undefined ? profile.resolvePath(profile.profile.caFile) : undefined);
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile);
    } catch (err) {
      throw new CliError(`CA file ${caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the CA certificate (PEM) that signed the agent's certificate`, EXIT.usage);
    }
  }
  return { url, token, ...(ca && { ca }), source: { url: urlSource, token: tokenSource } };
}

interface ChosenProfile {
  readonly name: string;
  readonly profile: Profile;
  readonly label: string;
  /** A profile's file paths: `~/` is the home folder, relative ones are beside the config file. */
  resolvePath(path: string): string;
}

function chooseProfile(name: string | undefined, env: NodeJS.ProcessEnv): ChosenProfile | undefined {
  const file = configPath(env);
  const config = loadConfig(file);
  const chosenName = name ?? config.current;
  if (chosenName === undefined) return undefined;
  const profile = config.profiles[chosenName];
  if (profile === undefined) {
    const known = Object.keys(config.profiles);
    throw new CliError(`no profile '${chosenName}' in ${file}${known.length ? ` (profiles: ${known.join(", ")})` : ""}: add it with 'gpufabric profile add ${chosenName} --url URL --token-stdin'`, EXIT.usage);
  }
  return {
    name: chosenName,
    profile,
    label: `profile '${chosenName}' in ${file}`,
    resolvePath: (path) => (path.startsWith("~/") ? join(homedir(), path.slice(2)) : isAbsolute(path) ? path : resolve(dirname(file), path)),
  };
}

/** The agent's base URL; plain http only to this machine, since the token would cross the network in clear text. */
export function agentUrl(text: string, source: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`${source}: '${text}' is not a URL: give the agent's address, e.g. https://gpufabric.example.internal:8443`, EXIT.usage);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new CliError(`${source}: '${text}' must be an https:// URL`, EXIT.usage);
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    throw new CliError(`${source}: '${text}' is plain http to another machine, which would send the token in clear text: use https://`, EXIT.usage);
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new CliError(`${source}: '${text}' must not carry a query, fragment or credentials: give the agent's base URL`, EXIT.usage);
  }
  return url;
}

function sameAgent(profileUrl: string, url: URL): boolean {
  try {
    const other = new URL(profileUrl);
    return other.origin === url.origin && other.pathname.replace(/\/+$/, "") === url.pathname.replace(/\/+$/, "");
  } catch {
    return false;
  }
}

/** A token file's one line; a file the group or others may read is refused as key files are. */
function readTokenFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`${what}: ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): put your tenant's API token in that file`, EXIT.usage);
  }
  if (process.platform !== "win32") {
    const stat = statSync(file);
    const problem = keyFileProblem(file, { mode: stat.mode & 0o777, uid: stat.uid });
    if (problem !== undefined) throw new CliError(`${what}: ${problem}`, EXIT.usage);
  }
  return text.trim();
}
