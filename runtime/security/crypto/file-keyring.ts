import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { keyFileProblem } from "./private-file.ts";
import { randomBytesPooled } from "./random.ts";
import { DecryptionError, KeyringError, KeyUnavailableError, type RotatableKeyProvider, type UsageCount } from "./key-provider.ts";

/** KEKs are 256-bit AES keys. */
export const KEK_BYTES = 32;
const WRAP_IV_BYTES = 12;
const WRAP_TAG_BYTES = 16;
const VERSION_FILE = /^v([1-9][0-9]{0,8})$/;
const STRICT_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * A keyring on disk, in one of two layouts:
 * - a directory as a Kubernetes Secret mount presents it: one file per version (`v1`, `v2`, ...) holding
 *   the base64 key, plus `current` naming the version in use (`v2`); dot-entries (`..data`) are ignored;
 * - a single JSON file `{ "current": "v2", "keys": { "v1": "<base64>", "v2": "<base64>" } }`.
 * Key files must not be readable by group or others; the keyring refuses to load them otherwise.
 */
export type KeyringLayout = "directory" | "file";

interface LoadedKeys {
  readonly keys: ReadonlyMap<number, Buffer>;
  readonly current: number;
}

export class FileKeyring implements RotatableKeyProvider {
  private loaded: LoadedKeys;
  private stamp: string;

  private constructor(
    readonly path: string,
    readonly layout: KeyringLayout,
  ) {
    this.loaded = loadKeys(path, layout);
    this.stamp = this.currentStamp();
  }

  /** Opens an existing keyring (directory or JSON file, told apart by what is at `path`). */
  static open(path: string): FileKeyring {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new KeyringError(`no keyring at ${path}: create one with 'gpufabric keys init', or pass --keyring with the path of an existing one`);
    }
    return new FileKeyring(path, isDirectory ? "directory" : "file");
  }

  /** Creates a keyring holding one fresh version (v1); refuses to overwrite anything at `path`. */
  static create(path: string, layout: KeyringLayout = "directory"): FileKeyring {
    if (exists(path)) throw new KeyringError(`${path} already exists: open it instead, or choose another path`);
    mkdirSync(layout === "directory" ? path : dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(KEK_BYTES);
    if (layout === "directory") {
      writeAtomic(join(path, "v1"), `${key.toString("base64")}\n`);
      writeAtomic(join(path, "current"), "v1\n");
    } else {
      writeAtomic(path, jsonKeyring(new Map([[1, key]]), 1));
    }
    return new FileKeyring(path, layout);
  }

  /** Reads the keyring again, e.g. after a Secret update rotated it elsewhere. */
  reload(): void {
    const stamp = this.currentStamp();
    this.loaded = loadKeys(this.path, this.layout);
    this.stamp = stamp;
  }

  /** The current version, re-read when the file naming it changed (a `keys rotate` or a Secret update while running). */
  async currentVersion(): Promise<number> {
    if (this.currentStamp() !== this.stamp) this.reload();
    return this.loaded.current;
  }

  async versions(): Promise<readonly number[]> {
    return [...this.loaded.keys.keys()].sort((a, b) => a - b);
  }

  async wrap(dataKey: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array> {
    const kek = this.kek(version);
    const iv = randomBytesPooled(WRAP_IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", kek, iv);
    cipher.setAAD(aad);
    return Buffer.concat([iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  }

  async unwrap(wrapped: Uint8Array, version: number, aad: Uint8Array): Promise<Uint8Array> {
    if (!this.loaded.keys.has(version)) this.reload();
    const kek = this.kek(version);
    if (wrapped.length <= WRAP_IV_BYTES + WRAP_TAG_BYTES) throw new DecryptionError(`wrapped data key is ${wrapped.length} bytes, too short to be one`);
    const body = wrapped.subarray(WRAP_IV_BYTES, wrapped.length - WRAP_TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", kek, wrapped.subarray(0, WRAP_IV_BYTES));
    decipher.setAAD(aad);
    decipher.setAuthTag(wrapped.subarray(wrapped.length - WRAP_TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      throw new DecryptionError(`the data key does not unwrap under key version ${version}: the object was altered or belongs to another tenant, run or object`);
    }
  }

  async rotate(): Promise<number> {
    return this.writing(() => this.rotateNow());
  }

  private rotateNow(): number {
    this.reload();
    const next = Math.max(0, ...this.loaded.keys.keys()) + 1;
    const keys = new Map(this.loaded.keys).set(next, randomBytes(KEK_BYTES));
    if (this.layout === "directory") {
      // The new key is durable before `current` names it, so a crash between the two leaves the old version current.
      writeAtomic(join(this.path, `v${next}`), `${keys.get(next)!.toString("base64")}\n`);
      writeAtomic(join(this.path, "current"), `v${next}\n`);
    } else {
      writeAtomic(this.path, jsonKeyring(keys, next));
    }
    this.reload();
    return next;
  }

  async retire(version: number, usage: UsageCount): Promise<void> {
    const inUse = await this.checkRetirable(version, usage);
    if (inUse > 0) throw new KeyringError(`v${version} still protects ${inUse} object${inUse === 1 ? "" : "s"}: rewrap them under the current version first`);
    this.writing(() => this.remove(version));
  }

  private async checkRetirable(version: number, usage: UsageCount): Promise<number> {
    this.reload();
    if (!this.loaded.keys.has(version)) throw new KeyUnavailableError(version, await this.versions());
    if (version === this.loaded.current) throw new KeyringError(`v${version} is the current key version: rotate first, rewrap everything, then retire it`);
    const inUse = typeof usage === "number" ? usage : await usage(version);
    if (!Number.isInteger(inUse) || inUse < 0) throw new KeyringError(`usage count for v${version} must be a non-negative integer (got ${String(inUse)})`);
    return inUse;
  }

  private remove(version: number): void {
    if (this.layout === "directory") {
      unlinkSync(join(this.path, `v${version}`));
      fsyncDirectory(this.path);
    } else {
      const keys = new Map(this.loaded.keys);
      keys.delete(version);
      writeAtomic(this.path, jsonKeyring(keys, this.loaded.current));
    }
    this.reload();
  }

  /** Runs a change to the keyring files, turning a read-only keyring into an error that says what to do. */
  private writing<T>(change: () => T): T {
    try {
      return change();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EROFS" || code === "EACCES" || code === "EPERM") {
        throw new KeyringError(`the keyring at ${this.path} cannot be changed here (${code}): a mounted Secret is read-only; rotate by adding the version to the Secret itself`);
      }
      throw err;
    }
  }

  /** Identity of the file that names the current version; Secret updates swap it, rotate renames over it. */
  private currentStamp(): string {
    try {
      const stat = statSync(this.layout === "directory" ? join(this.path, "current") : this.path);
      return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    } catch {
      return "missing";
    }
  }

  private kek(version: number): Buffer {
    const kek = this.loaded.keys.get(version);
    if (!kek) throw new KeyUnavailableError(version, [...this.loaded.keys.keys()].sort((a, b) => a - b));
    return kek;
  }
}

function loadKeys(path: string, layout: KeyringLayout): LoadedKeys {
  return layout === "directory" ? loadDirectory(path) : loadJsonFile(path);
}

function loadDirectory(dir: string): LoadedKeys {
  const keys = new Map<number, Buffer>();
  for (const name of readdirSync(dir)) {
    const match = VERSION_FILE.exec(name);
    if (!match) continue;
    const file = join(dir, name);
    requirePrivate(file);
    keys.set(Number(match[1]), decodeKey(readFileSync(file, "utf8").trim(), file));
  }
  const currentFile = join(dir, "current");
  if (!exists(currentFile)) throw new KeyringError(`${currentFile} is missing: write the current version into it (e.g. 'v1')`);
  const current = parseVersion(readFileSync(currentFile, "utf8").trim(), currentFile);
  return checked(keys, current, dir);
}

function loadJsonFile(file: string): LoadedKeys {
  requirePrivate(file);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new KeyringError(`${file} is not JSON (${(err as Error).message}): a keyring file is { "current": "v1", "keys": { "v1": "<base64 of 32 bytes>" } }`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new KeyringError(`${file}: must be an object { "current": "v1", "keys": { ... } }`);
  const { current, keys } = doc as { current?: unknown; keys?: unknown };
  if (typeof current !== "string") throw new KeyringError(`${file}: current must be a version name such as "v1"`);
  if (typeof keys !== "object" || keys === null || Array.isArray(keys)) throw new KeyringError(`${file}: keys must be an object mapping version names ("v1") to base64 keys`);
  const loaded = new Map<number, Buffer>();
  for (const [name, value] of Object.entries(keys)) {
    const version = parseVersion(name, `${file}: keys.${name}`);
    if (typeof value !== "string") throw new KeyringError(`${file}: keys.${name} must be a base64 string`);
    loaded.set(version, decodeKey(value, `${file}: keys.${name}`));
  }
  return checked(loaded, parseVersion(current, `${file}: current`), file);
}

function checked(keys: Map<number, Buffer>, current: number, where: string): LoadedKeys {
  if (!keys.has(current)) throw new KeyringError(`${where}: the current version v${current} has no key: add it or name an existing version as current`);
  return { keys, current };
}

function parseVersion(text: string, where: string): number {
  const match = VERSION_FILE.exec(text);
  if (!match) throw new KeyringError(`${where}: '${text}' is not a key version: use 'v' and a positive number, e.g. 'v1'`);
  return Number(match[1]);
}

function decodeKey(text: string, where: string): Buffer {
  const key = STRICT_BASE64.test(text) ? Buffer.from(text, "base64") : undefined;
  if (!key || key.length !== KEK_BYTES) throw new KeyringError(`${where}: a key must be ${KEK_BYTES} random bytes in base64 (e.g. 'openssl rand -base64 32')`);
  return key;
}

/** Refuses key files that group or others could read (or anything that is not a regular file). */
function requirePrivate(file: string): void {
  const stat = statSync(file);
  if (!stat.isFile()) throw new KeyringError(`${file} is not a regular file`);
  const problem = keyFileProblem(file, { mode: stat.mode & 0o777, uid: stat.uid });
  if (problem !== undefined) throw new KeyringError(problem);
}

function jsonKeyring(keys: ReadonlyMap<number, Buffer>, current: number): string {
  const entries = [...keys].sort(([a], [b]) => a - b).map(([v, k]) => [`v${v}`, k.toString("base64")]);
  return `${JSON.stringify({ current: `v${current}`, keys: Object.fromEntries(entries) }, null, 2)}\n`;
}

/** Writes a 0600 file durably: a temporary file, fsync, rename over the target, fsync of the directory. */
function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDirectory(dirname(path));
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
