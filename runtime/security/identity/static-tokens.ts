/**
 * Verifies static API tokens against the hash files of the tokens Secret mount (see token-format.ts),
 * and reloads them when the mount changes (Kubernetes swaps a Secret's files atomically by renaming
 * its `..data` link; an editor on a laptop rewrites a file in place: both are seen).
 */
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { createHash, timingSafeEqual } from "node:crypto";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import { isTokenShaped, parseTokenFile, sha256 } from "./token-format.ts";
import { authFailure, type AuthResult } from "./types.ts";

/** A token file larger than this is refused: thousands of tokens fit in far less. */
const MAX_TOKEN_FILE_BYTES = 1024 * 1024;

interface TableEntry {
  readonly tenant: string;
  readonly subject: string;
  readonly hash: Buffer;
}

interface Table {
  readonly entries: readonly TableEntry[];
  /** SHA-256 over every file read, to tell a real change from a touch. */
  readonly fingerprint: string;
}

export type ReloadEvent =
  | { readonly ok: true; readonly changed: boolean; readonly tokens: number }
  | { readonly ok: false; readonly error: Error };

export interface WatchOptions {
  /** Also re-read the files this often, in case file events are lost (network filesystems). 0: never. */
  readonly pollIntervalMs?: number;
  /** Wait this long after a file event before reading, so a multi-file swap is read once. */
  readonly debounceMs?: number;
}

export class StaticTokenVerifier {
  readonly #dir: string;
  readonly #tenants: ReadonlySet<string>;
  #table: Table;

  private constructor(dir: string, tenants: ReadonlySet<string>, table: Table) {
    this.#dir = dir;
    this.#tenants = tenants;
    this.#table = table;
  }

  /**
   * Reads every tenant's token file in `dir`. `tenants` are the tenant names of the platform config:
   * a file named after no tenant is an error (a typo would otherwise lock its holders out silently).
   */
  static load(dir: string, tenants: readonly string[]): StaticTokenVerifier {
    const known = new Set(tenants);
    return new StaticTokenVerifier(dir, known, readTable(dir, known));
  }

  /** Number of token hashes loaded. */
  get size(): number {
    return this.#table.entries.length;
  }

  /**
   * Checks a presented token. Every stored hash is compared, in constant time and without stopping at
   * a match, so the time taken reveals neither whether nor for which tenant the token matched.
   */
  verify(token: string): AuthResult {
    if (!isTokenShaped(token)) return authFailure("malformed", "not a gpufabric token: expected 'gf_' and 43 base64url characters");
    const presented = sha256(token);
    let match: TableEntry | undefined;
    for (const entry of this.#table.entries) {
      // Only one entry can match (hashes are unique across tenants); the branch is taken at most once.
      if (timingSafeEqual(presented, entry.hash)) match = entry;
    }
    if (match === undefined) return authFailure("unknown-token", "no tenant's token file holds this token's hash");
    return { ok: true, identity: { tenant: match.tenant, subject: match.subject, groups: [], method: "token" } };
  }

  /**
   * Re-reads the files. On an error the previous tokens stay in force (a half-written file must not
   * lock everyone out) and the error is returned for the agent to log and audit.
   */
  reload(): ReloadEvent {
    try {
      const table = readTable(this.#dir, this.#tenants);
      const changed = table.fingerprint !== this.#table.fingerprint;
      this.#table = table;
      return { ok: true, changed, tokens: table.entries.length };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
    }
  }

  /** Reloads on file events (and on a timer, if asked). Returns a function that stops watching. */
  watch(onReload: (event: ReloadEvent) => void, options: WatchOptions = {}): () => void {
    const debounceMs = options.debounceMs ?? 50;
    let timer: NodeJS.Timeout | undefined;
    const run = () => {
      timer = undefined;
      const event = this.reload();
      if (!event.ok || event.changed) onReload(event);
    };
    const schedule = () => {
      if (timer === undefined) timer = setTimeout(run, debounceMs);
    };
    let watcher: FSWatcher | undefined = watch(this.#dir, { persistent: false }, schedule);
    watcher.on("error", (error) => onReload({ ok: false, error }));
    const poll = options.pollIntervalMs ? setInterval(schedule, options.pollIntervalMs) : undefined;
    poll?.unref();
    return () => {
      watcher?.close();
      watcher = undefined;
      if (timer !== undefined) clearTimeout(timer);
      if (poll !== undefined) clearInterval(poll);
    };
  }
}

function readTable(dir: string, tenants: ReadonlySet<string>): Table {
  const issues: FieldIssue[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new ValidationError("token directory", [
      { field: "security.auth.tokens.mountPath", message: `cannot read '${dir}' (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount the tokens Secret there` },
    ]);
  }
  const entries: TableEntry[] = [];
  const owner = new Map<string, string>();
  const fingerprint = createHash("sha256");
  for (const name of names) {
    // Kubernetes keeps a Secret's real files under hidden `..data` folders and links them by name.
    if (name.startsWith(".")) continue;
    const file = join(dir, name);
    const stat = statSync(file, { throwIfNoEntry: false });
    if (stat === undefined || !stat.isFile()) continue;
    if (!tenants.has(name)) {
      issues.push({ field: name, message: `token file names no tenant: name each file after a tenant of the platform config (tenants[].name)` });
      continue;
    }
    if (stat.size > MAX_TOKEN_FILE_BYTES) {
      issues.push({ field: name, message: `token file is larger than ${MAX_TOKEN_FILE_BYTES} bytes: it should hold one short line per token` });
      continue;
    }
    const text = readFileSync(file, "utf8");
    fingerprint.update(`${name}\0${text}\0`);
    try {
      for (const entry of parseTokenFile(text, name)) {
        const hex = entry.hash.toString("hex");
        const other = owner.get(hex);
        if (other !== undefined) {
          issues.push({ field: `${name}:${entry.line}`, message: `the same token hash is also in tenant '${other}': a token belongs to one tenant, generate a new one` });
          continue;
        }
        owner.set(hex, name);
        entries.push({ tenant: name, subject: entry.subject, hash: entry.hash });
      }
    } catch (err) {
      if (err instanceof ValidationError) issues.push(...err.issues);
      else throw err;
    }
  }
  if (issues.length > 0) throw new ValidationError(`token files in ${dir}`, issues);
  return { entries, fingerprint: fingerprint.digest("hex") };
}
