/**
 * Where an attempt works and where its results go, under the agent's data directory:
 *   workspaces/<run>/<stage>/<attempt>/{inputs/<need>/, outputs/, tmp/}   fresh for every attempt
 *   logs/<run>/<stage>/<attempt>.{stdout,stderr}.log                      kept after the workspace goes
 *   artifacts/<run>/<stage>/<attempt>/<name>                              committed outputs
 */
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { copyFile, link, lstat, mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { ValidationError, type FieldIssue } from "../../config/errors.ts";
import { artifactNameProblem, assertSafeSegment } from "./output-names.ts";
import type { AttemptInput, CommittedArtifact } from "./types.ts";

export interface AttemptPaths {
  readonly workspace: string;
  readonly inputs: string;
  readonly outputs: string;
  readonly tmp: string;
  readonly stdoutLog: string;
  readonly stderrLog: string;
  readonly artifacts: string;
}

export function attemptPaths(dataDir: string, runId: string, stageId: string, attempt: number): AttemptPaths {
  assertSafeSegment("run id", runId);
  assertSafeSegment("stage id", stageId);
  if (!Number.isInteger(attempt) || attempt < 1) throw new Error(`attempt number must be a whole number of 1 or more (got ${attempt})`);
  const workspace = join(dataDir, "workspaces", runId, stageId, String(attempt));
  const logs = join(dataDir, "logs", runId, stageId);
  return {
    workspace,
    inputs: join(workspace, "inputs"),
    outputs: join(workspace, "outputs"),
    tmp: join(workspace, "tmp"),
    stdoutLog: join(logs, `${attempt}.stdout.log`),
    stderrLog: join(logs, `${attempt}.stderr.log`),
    artifacts: join(dataDir, "artifacts", runId, stageId, String(attempt)),
  };
}

/** How needed outputs appear in a workspace: copies (reflinks where the file system can) or hard links. */
export type InputMode = "copy" | "hardlink";

/** The run's `inputs` object, as every stage of the run finds it in `$GPUFABRIC_INPUT_DIR`. */
export const RUN_INPUTS_FILE = "run-inputs.json";

/**
 * Creates a fresh workspace (whatever an earlier try left there is removed), places each needed
 * stage's committed outputs in `inputs/<stage>/` and the run's inputs in `inputs/run-inputs.json`
 * (no stage id has a dot, so it never meets a stage's folder). Only regular files are taken: never a symlink.
 */
export async function prepareWorkspace(paths: AttemptPaths, inputs: readonly AttemptInput[], mode: InputMode): Promise<void> {
  await rm(paths.workspace, { recursive: true, force: true });
  await mkdir(paths.outputs, { recursive: true });
  await mkdir(paths.tmp, { recursive: true });
  await mkdir(paths.inputs, { recursive: true });
  await mkdir(join(paths.stdoutLog, ".."), { recursive: true });
  for (const input of inputs) {
    if ("runInputs" in input) {
      await placeRegularFile(input.runInputs, join(paths.inputs, RUN_INPUTS_FILE), "the run's inputs");
      continue;
    }
    assertSafeSegment("needed stage id", input.stageId);
    const dir = join(paths.inputs, input.stageId);
    await mkdir(dir, { recursive: true });
    for (const artifact of input.artifacts) {
      const problem = artifactNameProblem(artifact.name);
      if (problem) throw new Error(`input '${artifact.name}' of stage '${input.stageId}' ${problem}`);
      const target = join(dir, artifact.name);
      const what = `input '${artifact.name}' of stage '${input.stageId}'`;
      if (mode === "hardlink") {
        await assertRegularFile(artifact.path, what);
        try {
          await link(artifact.path, target);
          continue;
        } catch (err) {
          // Another file system, or links not allowed: fall back to a copy.
          if (!["EXDEV", "EPERM", "EMLINK"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
        }
      }
      await placeRegularFile(artifact.path, target, what);
    }
  }
}

async function assertRegularFile(path: string, what: string): Promise<void> {
  if (!(await lstat(path)).isFile()) throw new Error(`${what} at ${path} is not a regular file`);
}

/** Copies a regular file (a reflink where the file system can) to a new name. */
async function placeRegularFile(source: string, target: string, what: string): Promise<void> {
  await assertRegularFile(source, what);
  await copyFile(source, target, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
}

/**
 * Commits an attempt's outputs: checks every entry of `outputs/` (plain files with plain names only),
 * hashes and fsyncs each file, renames the folder into `artifacts/` in one step and fsyncs the parent,
 * so the artifacts are either all there, durably, or not at all.
 */
export async function commitOutputs(paths: AttemptPaths, what: string): Promise<CommittedArtifact[]> {
  const entries = await readdir(paths.outputs, { withFileTypes: true });
  const issues: FieldIssue[] = [];
  for (const entry of entries) {
    const field = `GPUFABRIC_OUTPUT_DIR/${JSON.stringify(entry.name).slice(1, -1)}`;
    const problem = artifactNameProblem(entry.name);
    if (problem) issues.push({ field, message: `the name ${problem}` });
    else if (entry.isSymbolicLink()) issues.push({ field, message: "is a symbolic link: write the file itself, links are never followed" });
    else if (entry.isDirectory()) issues.push({ field, message: "is a folder: write plain files at the top of GPUFABRIC_OUTPUT_DIR" });
    else if (!entry.isFile()) issues.push({ field, message: "is not a regular file (a socket, FIFO or device)" });
  }
  if (issues.length > 0) throw new ValidationError(`outputs of ${what}`, issues);

  const described: Array<Omit<CommittedArtifact, "path">> = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    described.push({ name: entry.name, ...(await hashAndSync(join(paths.outputs, entry.name))) });
  }
  const parent = join(paths.artifacts, "..");
  await mkdir(parent, { recursive: true });
  await rename(paths.outputs, paths.artifacts);
  await syncDirectory(paths.artifacts);
  await syncDirectory(parent);
  return described.map((d) => ({ ...d, path: join(paths.artifacts, d.name) }));
}

async function hashAndSync(file: string): Promise<{ bytes: number; sha256: string }> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of handle.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
    return { bytes, sha256: hash.digest("hex") };
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
