import type { Command } from "commander";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { auditPaths } from "../../runtime/security/audit/index.ts";
import { FileKeyring, KeyringError, keyringPath, KeyUnavailableError, scanKeyVersionUsage, usageOf, type KeyringLayout, type KeyVersionUsage } from "../../runtime/security/crypto/index.ts";
import { heldByAnAgent } from "../../runtime/agent/service/agent-dirs.ts";
import { CliError, EXIT } from "../errors.ts";

interface KeysOptions {
  dataDir: string;
  keyring?: string;
  json?: boolean;
}

const DEFAULT_DATA_DIR = ".gpufabric";

/** `gpufabric keys init|list|rotate|retire`: the keyring that wraps every data key. */
export function register(program: Command): void {
  const keys = program.command("keys").description("manage the keyring of key-encryption keys (envelope encryption at rest)");
  const common = (cmd: Command) =>
    cmd
      .option("--data-dir <dir>", "the agent's data directory", DEFAULT_DATA_DIR)
      .option("--keyring <path>", "keyring directory or JSON file (default: DATA_DIR/keyring)")
      .option("--json", "print the result as JSON");

  common(keys.command("init").description("create a keyring holding one fresh 256-bit key (v1)"))
    .option("--layout <layout>", "directory (one file per version, as a Secret mount) or file (one JSON file)", "directory")
    .action((options: KeysOptions & { layout: string }) => {
      if (options.layout !== "directory" && options.layout !== "file") throw new CliError(`--layout must be 'directory' or 'file' (got '${options.layout}')`, EXIT.usage);
      const keyring = withKeyringErrors(() => FileKeyring.create(pathOf(options), options.layout as KeyringLayout));
      print(options, { keyring: keyring.path, layout: keyring.layout, current: 1, versions: [1] }, `created keyring ${keyring.path} with v1 (current)\n`);
    });

  common(keys.command("list").description("list key versions, the current one, and how many objects under the data directory use each"))
    .action(async (options: KeysOptions) => {
      const keyring = open(options);
      const [versions, current] = [await keyring.versions(), await keyring.currentVersion()];
      const usage = await scanUsage(options);
      const rows = versions.map((v) => ({ version: v, current: v === current, objects: usage ? usageOf(usage, v) : null }));
      const text = rows.map((r) => `v${r.version}${r.current ? "  (current)" : ""}${r.objects === null ? "" : `  ${r.objects} object${r.objects === 1 ? "" : "s"}`}`).join("\n");
      print(options, { keyring: keyring.path, current, versions: rows, filesScanned: usage?.filesScanned ?? 0 }, `${keyring.path}\n${text}\n`);
    });

  common(keys.command("rotate").description("add a key version and make it current; new objects use it at once, and the agent rewraps existing ones"))
    .action(async (options: KeysOptions) => {
      const keyring = open(options);
      const previous = await keyring.currentVersion();
      const current = await withKeyringErrorsAsync(() => keyring.rotate());
      print(
        options,
        { keyring: keyring.path, previous, current, versions: await keyring.versions() },
        `rotated ${keyring.path}: v${current} is current (was v${previous}); the agent rewraps what v${previous} protects in the background (a running agent on its next key check, a stopped one soon after it starts); 'gpufabric keys list' shows the objects per version; at 0 for v${previous}, retire it with 'gpufabric keys retire v${previous}'\n`,
      );
    });

  common(keys.command("retire").description("remove a key version no object uses any more (refused while any does)"))
    .argument("<version>", "the version to retire, e.g. v1")
    .action(async (versionText: string, options: KeysOptions) => {
      const match = /^v?([1-9][0-9]{0,8})$/.exec(versionText);
      if (!match) throw new CliError(`'${versionText}' is not a key version: use e.g. v1`, EXIT.usage);
      const version = Number(match[1]);
      const keyring = open(options);
      const usage = await scanUsage(options);
      if (!usage) throw new CliError(`cannot count the objects that use v${version}: the data directory ${resolve(options.dataDir)} does not exist (pass --data-dir)`, EXIT.usage);
      const inUse = usageOf(usage, version);
      const current = await keyring.currentVersion();
      if (inUse > 0 && version !== current) throw new CliError(stillInUse(version, inUse, current, resolve(options.dataDir)), EXIT.failure);
      await withKeyringErrorsAsync(() => keyring.retire(version, usageOf(usage, version)));
      print(options, { keyring: keyring.path, retired: version, versions: await keyring.versions(), filesScanned: usage.filesScanned }, `retired v${version} from ${keyring.path} (${usage.filesScanned} files checked, none uses it)\n`);
    });
}

/**
 * Only the agent rewraps (it holds the store and the sealed files' contexts): say whether one runs on the data
 * directory (its lock, agent-dirs.ts), when it rewraps, and how to follow it.
 */
function stillInUse(version: number, objects: number, current: number, dataDir: string): string {
  const what = `v${version} still protects ${objects} object${objects === 1 ? "" : "s"}`;
  const follow = `'gpufabric keys list' shows the objects per version; retire v${version} once it shows 0`;
  const agent = heldByAnAgent(dataDir);
  if (agent.held) {
    const who = agent.holder ? ` (pid ${agent.holder.pid} on ${agent.holder.host})` : "";
    return `${what}: the agent running on ${dataDir}${who} rewraps them to v${current} in the background, on its next key check (every --key-check-interval seconds, 10 by default); ${follow}`;
  }
  return `${what}, and no agent runs on ${dataDir}: start it ('gpufabric agent' or 'gpufabric dev'); it rewraps them to v${current} soon after it starts, while v${version} is in the keyring; ${follow}`;
}

function pathOf(options: KeysOptions): string {
  return options.keyring ?? keyringPath(options.dataDir);
}

function open(options: KeysOptions): FileKeyring {
  return withKeyringErrors(() => FileKeyring.open(pathOf(options)));
}

/** Objects under the data directory by key version; the keyring and audit folders hold no envelopes. */
async function scanUsage(options: KeysOptions): Promise<KeyVersionUsage | undefined> {
  if (!existsSync(options.dataDir)) return undefined;
  const audit = auditPaths(options.dataDir);
  const skip = [pathOf(options), audit.logDir, audit.checkpointsDir].map((p) => resolve(p));
  return scanKeyVersionUsage(resolve(options.dataDir), { skip });
}

function withKeyringErrors<T>(action: () => T): T {
  try {
    return action();
  } catch (err) {
    throw asCliError(err);
  }
}

async function withKeyringErrorsAsync<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw asCliError(err);
  }
}

function asCliError(err: unknown): unknown {
  return err instanceof KeyringError || err instanceof KeyUnavailableError ? new CliError(err.message, EXIT.failure) : err;
}

function print(options: KeysOptions, json: object, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(json, null, 2)}\n` : text);
}
