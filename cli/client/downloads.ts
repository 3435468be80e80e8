/**
 * `runs artifacts`: every artifact of a run, decrypted by the agent as it is sent, written to
 * DIR/<stage>/<name>. The names come from the agent, which a client need not trust: each must be one safe
 * path segment (no separator, `..`, absolute path, control or invisible character), the stage folders
 * and files must not be symbolic links, and every file is written under a temporary name, its SHA-256
 * checked against the agent's x-content-sha256, and only then renamed into place.
 */
import { createHash, randomBytes } from "node:crypto";
import { constants, lstatSync, mkdirSync, realpathSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join, relative, isAbsolute, sep } from "node:path";
import { segmentProblem } from "../../runtime/security/names/index.ts";
import { CliError } from "../errors.ts";
import type { AgentClient } from "./http.ts";

export interface ArtifactEntry {
  readonly name: string;
  readonly stage: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface DownloadedArtifact extends ArtifactEntry {
  readonly path: string;
}

/** Why an artifact's stage or name cannot be a file under the output folder; undefined when it can. */
export function artifactPathProblem(stage: unknown, name: unknown): string | undefined {
  const stageProblem = segmentProblem(stage, 128);
  if (stageProblem !== undefined) return `stage ${JSON.stringify(stage)} ${stageProblem}`;
  const nameProblem = segmentProblem(name, 255);
  if (nameProblem !== undefined) return `artifact name ${JSON.stringify(name)} ${nameProblem}`;
  return undefined;
}

/** The path of an artifact under `outDir`, or a CliError when its names would leave it. */
export function artifactTarget(outDir: string, stage: string, name: string): string {
  const problem = artifactPathProblem(stage, name);
  if (problem !== undefined) throw new CliError(`refusing to write an artifact: ${problem}`);
  const target = join(outDir, stage.normalize("NFC"), name.normalize("NFC"));
  const inside = relative(outDir, target);
  // Belt and braces: the segment check already rules this out.
  if (inside === "" || inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) throw new CliError(`refusing to write an artifact outside ${outDir}: ${stage}/${name}`);
  return target;
}

/** Creates DIR/<stage> (0700 where new) and checks that it is a real folder inside DIR, not a link out of it. */
function stageFolder(outDir: string, stage: string): string {
  const folder = join(outDir, stage);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const stat = lstatSync(folder);
  if (stat.isSymbolicLink() || !stat.isDirectory()) throw new CliError(`refusing to write into ${folder}: it is ${stat.isSymbolicLink() ? "a symbolic link" : "not a folder"}; remove it or choose another --out`);
  const real = realpathSync(folder);
  const base = realpathSync(outDir);
  if (relative(base, real).startsWith("..") || isAbsolute(relative(base, real))) throw new CliError(`refusing to write into ${folder}: it resolves outside ${outDir}`);
  return folder;
}

/** Downloads one artifact to its place under `outDir`, verifying its SHA-256. */
export async function downloadArtifact(client: AgentClient, runId: string, artifact: ArtifactEntry, outDir: string): Promise<DownloadedArtifact> {
  const target = artifactTarget(outDir, artifact.stage, artifact.name);
  const folder = stageFolder(outDir, artifact.stage.normalize("NFC"));
  try {
    const existing = lstatSync(target);
    if (existing.isSymbolicLink()) throw new CliError(`refusing to replace ${target}: it is a symbolic link; remove it or choose another --out`);
    if (!existing.isFile()) throw new CliError(`refusing to replace ${target}: it is not a regular file`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const temporary = join(folder, `.${randomBytes(8).toString("hex")}.part`);
  // O_EXCL and O_NOFOLLOW: a file or link planted under the temporary name is never written through.
  const handle = await open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    const path = `/v1/runs/${encodeURIComponent(runId)}/artifacts/${encodeURIComponent(artifact.name)}?stage=${encodeURIComponent(artifact.stage)}`;
    const response = await client.stream(path, { accept: "*/*" });
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      await handle.write(chunk);
    }
    const digest = hash.digest("hex");
    const announced = response.headers["x-content-sha256"];
    const expected = typeof announced === "string" ? announced.toLowerCase() : artifact.sha256.toLowerCase();
    if (digest !== expected || digest !== artifact.sha256.toLowerCase()) {
      throw new CliError(`artifact ${artifact.stage}/${artifact.name}: the download's SHA-256 ${digest} (${bytes} bytes) is not the agent's ${expected}: download it again`);
    }
    await handle.sync();
    await handle.close();
    await rename(temporary, target);
    renamed = true;
    return { ...artifact, path: target };
  } finally {
    if (!renamed) {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
    }
  }
}
