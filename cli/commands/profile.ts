import type { Command } from "commander";
import { existsSync } from "node:fs";
import { agentUrl } from "../client/connection.ts";
import { readAll } from "../client/http.ts";
import { checkProfileName, configPath, loadConfig, saveConfig, tokenFingerprint, type Profile } from "../client/profiles.ts";
import { formatColumns } from "../client/progress.ts";
import { CliError, EXIT } from "../errors.ts";

interface AddOptions {
  url: string;
  tokenStdin?: boolean;
  tokenFile?: string;
  caFile?: string;
  use?: boolean;
  json?: boolean;
}

/**
 * `gpufabric profile`: named connections for `gpufabric runs` (an agent's URL, a token, a CA), kept in a
 * 0600 config file (GPUFABRIC_CONFIG, else $XDG_CONFIG_HOME/gpufabric/config.yaml, else
 * ~/.config/gpufabric/config.yaml), one of them current, as kubectl keeps contexts. A token is read from
 * stdin or referenced by file, never taken on the command line (it would land in the shell's history
 * and in the process list), and never printed.
 */
export function register(program: Command): void {
  const profile = program
    .command("profile")
    .description(`named agent connections for 'gpufabric runs' (config: ${configPath().replace(process.env.HOME ?? "\u0000", "~")})`);

  profile
    .command("add")
    .argument("<name>", "the profile's name")
    .description("add or replace a profile: the agent's URL and a token (from stdin or a file); the first one added becomes current")
    .requiredOption("--url <url>", "the agent's URL, e.g. https://gpufabric.example.internal:8443")
    .option("--token-stdin", "read the token from stdin (e.g. `pass gpufabric | gpufabric profile add …`); it is stored in the 0600 config")
    .option("--token-file <file>", "keep only the path of a 0600 file that holds the token")
    .option("--ca-file <file>", "CA certificate (PEM) the agent's TLS certificate is checked against")
    .option("--use", "make it the current profile")
    .option("--json", "print machine-readable JSON")
    .action(async (name: string, options: AddOptions) => {
      checkProfileName(name);
      agentUrl(options.url, "--url");
      if ((options.tokenStdin === true) === (options.tokenFile !== undefined)) throw new CliError("give the token with --token-stdin or --token-file (one of them)", EXIT.usage);
      if (options.caFile !== undefined && !existsSync(options.caFile)) throw new CliError(`--ca-file: ${options.caFile} does not exist: give the CA certificate (PEM) that signed the agent's certificate`, EXIT.usage);
      let token: string | undefined;
      if (options.tokenStdin) {
        token = (await readAll(process.stdin)).toString("utf8").trim();
        if (token === "" || /\s/.test(token)) throw new CliError("--token-stdin: stdin holds no token (or more than one word): pipe the tenant's API token (gf_…)", EXIT.usage);
      }
      const file = configPath();
      const config = loadConfig(file);
      const entry: Profile = {
        url: options.url,
        ...(token !== undefined && { token }),
        ...(options.tokenFile !== undefined && { tokenFile: options.tokenFile }),
        ...(options.caFile !== undefined && { caFile: options.caFile }),
      };
      const replaced = name in config.profiles;
      config.profiles[name] = entry;
      if (options.use || config.current === undefined) config.current = name;
      saveConfig(file, config);
      if (options.json) return void process.stdout.write(`${JSON.stringify({ name, url: options.url, replaced, current: config.current === name, config: file })}\n`);
      process.stdout.write(`${replaced ? "replaced" : "added"} profile '${name}' (${options.url})${config.current === name ? ", current" : ""} in ${file}\n`);
    });

  profile
    .command("use")
    .argument("<name>", "the profile's name")
    .description("make a profile the current one")
    .option("--json", "print machine-readable JSON")
    .action((name: string, options: { json?: boolean }) => {
      const file = configPath();
      const config = loadConfig(file);
      if (!(name in config.profiles)) throw new CliError(`no profile '${name}' in ${file} (profiles: ${Object.keys(config.profiles).join(", ") || "none"})`, EXIT.usage);
      config.current = name;
      saveConfig(file, config);
      process.stdout.write(options.json ? `${JSON.stringify({ current: name, config: file })}\n` : `current profile: ${name}\n`);
    });

  profile
    .command("list")
    .description("the profiles, the current one marked; tokens only as fingerprints")
    .option("--json", "print machine-readable JSON")
    .action((options: { json?: boolean }) => {
      const file = configPath();
      const config = loadConfig(file);
      const entries = Object.entries(config.profiles).map(([name, p]) => ({
        name,
        current: name === config.current,
        url: p.url,
        token: p.token !== undefined ? tokenFingerprint(p.token) : p.tokenFile !== undefined ? `file ${p.tokenFile}` : null,
        caFile: p.caFile ?? null,
      }));
      if (options.json) return void process.stdout.write(`${JSON.stringify({ config: file, current: config.current ?? null, profiles: entries })}\n`);
      if (entries.length === 0) return void process.stdout.write(`no profiles in ${file}: add one with 'gpufabric profile add NAME --url URL --token-stdin'\n`);
      const rows = entries.map((e) => [e.current ? "*" : "", e.name, e.url, e.token ?? "-", e.caFile ?? ""]);
      process.stdout.write(`${formatColumns([["", "NAME", "URL", "TOKEN", "CA FILE"], ...rows]).join("\n")}\n`);
    });

  profile
    .command("remove")
    .argument("<name>", "the profile's name")
    .description("remove a profile (and its stored token)")
    .option("--json", "print machine-readable JSON")
    .action((name: string, options: { json?: boolean }) => {
      const file = configPath();
      const config = loadConfig(file);
      if (!(name in config.profiles)) throw new CliError(`no profile '${name}' in ${file} (profiles: ${Object.keys(config.profiles).join(", ") || "none"})`, EXIT.usage);
      delete config.profiles[name];
      if (config.current === name) delete config.current;
      saveConfig(file, config);
      if (options.json) return void process.stdout.write(`${JSON.stringify({ removed: name, current: config.current ?? null, config: file })}\n`);
      process.stdout.write(`removed profile '${name}'${config.current === undefined ? "; no profile is current now: pick one with 'gpufabric profile use NAME'" : ""}\n`);
    });
}
