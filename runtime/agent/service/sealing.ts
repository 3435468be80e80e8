/**
 * Encryption at rest of what stages produce. Stages work in a scratch directory (a tmpfs where the
 * machine has one); the moment an attempt's outputs are committed they are sealed with the chunked
 * envelope encryption into the data directory and the plaintext is deleted. Needed outputs are decrypted
 * into the scratch directory only for as long as the executor takes to copy them into a workspace.
 *
 * Artifacts live at `DATA_DIR/artifacts/<run>/<stage>/<attempt>/<name>`; the encryption context binds the
 * tenant, the run and `artifact/<stage>/<attempt>/<name>`, so a file moved to another object fails to open.
 */
import { createHash } from "node:crypto";
import { accessSync, constants, createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createDecryptStream, readDecryptedFile, writeEncryptedFile, type KeyProvider, type ObjectContext } from "../../security/crypto/index.ts";
import type { CommittedArtifact } from "../executors/types.ts";
import { RUN_INPUTS_FILE } from "../executors/workspace.ts";

/** Plaintext copies of what an attempt needs, in the scratch directory, until `release`. */
export interface OpenedInputs {
  readonly inputs: Array<{ stageId: string; name: string; path: string }>;
  /** The run's inputs as a JSON file, when they were given to open. */
  readonly runInputs?: string;
  /** The run's inputs as an object, for an executor on another node that writes the file there (cluster mode). */
  readonly runInputsValue?: Readonly<Record<string, unknown>>;
  release(): Promise<void>;
}

export interface ScratchChoice {
  readonly dir: string;
  /** True when the directory is on a tmpfs (plaintext never reaches a disk); false: a data-dir folder whose files are deleted right after sealing. */
  readonly inMemory: boolean;
  /** True when the agent made the folder for itself (under /dev/shm) and removes it when it stops. */
  readonly ownFolder: boolean;
}

/** What stages leave in the scratch directory, one folder per run in each. */
const SCRATCH_AREAS = ["workspaces", "logs", "artifacts", "staging"] as const;

/**
 * Where stages work: `given` when set (e.g. a memory-backed volume in a cluster), else a folder of
 * /dev/shm when it is a writable tmpfs, else `DATA_DIR/scratch`.
 */
export function chooseScratch(dataDir: string, given?: string): ScratchChoice {
  if (given !== undefined) {
    mkdirSync(given, { recursive: true, mode: 0o700 });
    return { dir: given, inMemory: isTmpfs(given), ownFolder: false };
  }
  if (isTmpfs("/dev/shm")) {
    try {
      accessSync("/dev/shm", constants.W_OK);
      // One folder per data directory, so two agents on one machine never share a workspace.
      const dir = join("/dev/shm", `gpufabric-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return { dir, inMemory: true, ownFolder: true };
    } catch {
      // not writable: fall through to the data directory
    }
  }
  const dir = join(dataDir, "scratch");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { dir, inMemory: false, ownFolder: false };
}

/** Whether `path` lies on a tmpfs, from the longest matching mount point in /proc/self/mounts (false where there is none). */
function isTmpfs(path: string): boolean {
  if (!existsSync(path) || !statSync(path).isDirectory()) return false;
  let mounts: string;
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return false;
  }
  let best = { point: "", type: "" };
  for (const line of mounts.split("\n")) {
    const [, point, type] = line.split(" ");
    if (point === undefined || type === undefined) continue;
    const inside = point === "/" || path === point || path.startsWith(`${point}/`);
    if (inside && point.length >= best.point.length) best = { point, type };
  }
  return best.type === "tmpfs";
}

export function artifactContext(tenant: string, runId: string, stageId: string, attempt: string, name: string): ObjectContext {
  return { tenant, run: runId, objectId: `artifact/${stageId}/${attempt}/${name}` };
}

/** The context of an artifact file under `DATA_DIR/artifacts`, from its place there. */
export function artifactContextOf(artifactsRoot: string, tenant: string, path: string): ObjectContext {
  const parts = relative(artifactsRoot, path).split(sep);
  if (parts.length !== 4 || parts.some((p) => p === "" || p === "..")) throw new Error(`${path} is not an artifact file of ${artifactsRoot}`);
  const [runId, stageId, attempt, name] = parts as [string, string, string, string];
  return artifactContext(tenant, runId, stageId, attempt, name);
}

export function logContext(tenant: string, runId: string, stageId: string, file: string): ObjectContext {
  return { tenant, run: runId, objectId: `log/${stageId}/${file}` };
}

export class ArtifactSealer {
  readonly artifactsRoot: string;
  readonly logsRoot: string;

  constructor(
    private readonly keys: KeyProvider,
    dataDir: string,
    private readonly scratchDir: string
  ) {
    this.artifactsRoot = join(dataDir, "artifacts");
    this.logsRoot = join(dataDir, "logs");
  }

  /**
   * Empties the scratch directory's areas: at start (attempts that were running rerun in fresh
   * workspaces, so what a stopped agent left there is plaintext no one needs) and when the agent stops.
   */
  async clearScratch(): Promise<void> {
    await Promise.all(SCRATCH_AREAS.map((area) => rm(join(this.scratchDir, area), { recursive: true, force: true })));
  }

  /** Removes what is left of a run in the scratch directory once nothing of it runs. */
  async discardRun(runId: string): Promise<void> {
    if (runId === "" || runId.includes("/") || runId.includes("\\") || runId === "." || runId === "..") return;
    await Promise.all(SCRATCH_AREAS.map((area) => rm(join(this.scratchDir, area, runId), { recursive: true, force: true })));
  }

  /** Encrypts committed outputs (in the scratch directory) into the data directory and deletes the plaintext. */
  async sealOutputs(run: { id: string; tenant: string }, artifacts: readonly CommittedArtifact[]): Promise<CommittedArtifact[]> {
    const sealed: CommittedArtifact[] = [];
    try {
      for (const artifact of artifacts) {
        const [runId, stageId, attempt, name] = relative(join(this.scratchDir, "artifacts"), artifact.path).split(sep) as [string, string, string, string];
        if (runId !== run.id || name !== artifact.name) throw new Error(`artifact ${artifact.path} is not an output of run ${run.id}`);
        const target = join(this.artifactsRoot, runId, stageId, attempt, name);
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        const source = await open(artifact.path, "r");
        try {
          await writeEncryptedFile(this.keys, artifactContext(run.tenant, runId, stageId, attempt, name), source.createReadStream({ autoClose: false }), target);
        } finally {
          await source.close();
        }
        sealed.push({ ...artifact, path: target });
      }
    } finally {
      // Sealed or not, the plaintext goes: a failed commit is retried from a fresh attempt.
      for (const artifact of artifacts) await rm(dirname(artifact.path), { recursive: true, force: true });
    }
    return sealed;
  }

  /** Encrypts an ended attempt's logs (in the scratch directory) into `DATA_DIR/logs` and deletes the plaintext. */
  async sealLogs(run: { id: string; tenant: string }, logs: { stdout: string; stderr: string }): Promise<void> {
    for (const path of [logs.stdout, logs.stderr]) {
      const parts = relative(join(this.scratchDir, "logs"), path).split(sep);
      if (parts.length !== 3 || parts[0] !== run.id || parts.some((p) => p === "" || p === "..")) throw new Error(`log ${path} is not a log of run ${run.id}`);
      const [runId, stageId, file] = parts as [string, string, string];
      const target = join(this.logsRoot, runId, stageId, file);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      try {
        const source = await open(path, "r");
        try {
          await writeEncryptedFile(this.keys, logContext(run.tenant, runId, stageId, file), source.createReadStream({ autoClose: false }), target);
        } finally {
          await source.close();
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      await rm(path, { force: true });
    }
  }

  /** The plaintext of a sealed log, from an already opened (and checked) file. */
  async readLog(tenant: string, runId: string, stageId: string, file: string, handle: { createReadStream(): Readable }): Promise<Buffer> {
    const decryptor = createDecryptStream(this.keys, logContext(tenant, runId, stageId, file));
    const parts: Buffer[] = [];
    await pipeline(handle.createReadStream(), decryptor, async (source: AsyncIterable<Buffer>) => {
      for await (const part of source) parts.push(part);
    });
    return Buffer.concat(parts);
  }

  /**
   * Decrypts the outputs a stage needs into the scratch directory, and writes the run's inputs (opened
   * from their sealed field by the caller) beside them as `run-inputs.json`; `release` deletes them.
   */
  async openInputs(
    run: { id: string; tenant: string },
    stageId: string,
    attempt: number,
    inputs: ReadonlyArray<{ stageId: string; name: string; path: string }>,
    runInputs?: Readonly<Record<string, unknown>>
  ): Promise<OpenedInputs> {
    const staging = join(this.scratchDir, "staging", run.id, stageId, String(attempt));
    const release = () => rm(staging, { recursive: true, force: true });
    const opened: Array<{ stageId: string; name: string; path: string }> = [];
    let runInputsFile: string | undefined;
    try {
      for (const input of inputs) {
        const target = join(staging, input.stageId, input.name);
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        const plain = readDecryptedFile(this.keys, artifactContextOf(this.artifactsRoot, run.tenant, input.path), input.path);
        await pipeline(plain, createWriteStream(target, { flags: "wx", mode: 0o600 }));
        opened.push({ ...input, path: target });
      }
      if (runInputs !== undefined) {
        // Stage ids have no dot: the file never meets a needed stage's folder.
        runInputsFile = join(staging, RUN_INPUTS_FILE);
        await mkdir(staging, { recursive: true, mode: 0o700 });
        await writeFile(runInputsFile, `${JSON.stringify(runInputs, null, 2)}\n`, { flag: "wx", mode: 0o600 });
      }
    } catch (err) {
      await release();
      throw err;
    }
    return { inputs: opened, ...(runInputsFile !== undefined && { runInputs: runInputsFile }), release };
  }

  /** A readable of an artifact's plaintext, decrypted as it is read, from an already opened (and checked) file. */
  openArtifact(tenant: string, path: string, file: { createReadStream(): Readable }): Readable {
    const decryptor = createDecryptStream(this.keys, artifactContextOf(this.artifactsRoot, tenant, path));
    pipeline(file.createReadStream(), decryptor).catch(() => undefined);
    return decryptor;
  }
}
