/**
 * Joins client-sent names onto one of the agent's own directories and proves the result stays inside
 * it: every segment is a safe name, no existing component along the way is a symbolic link (`lstat`),
 * and the real path of the parent (`realpath`) is the parent the join produced. The agent calls this
 * on every file access a request can steer.
 *
 * A check is only as good as the moment it runs: `openInside` also opens the final file with
 * O_NOFOLLOW, so a link swapped in after the check is refused by the kernel, and refuses files with
 * more than one hard link (a stage process could otherwise link a file from elsewhere on the volume
 * into its outputs).
 */
import { constants, type Stats } from "node:fs";
import { lstat, open, realpath, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";
import { segmentProblem } from "./validate.ts";

export type UnsafePathReason = "bad-name" | "outside-base" | "symlink" | "not-a-directory" | "not-a-file" | "hard-link";

/** A refused path. Routes answer 400 for a bad name and 404 for the rest (nothing to learn from it). */
export class UnsafePathError extends Error {
  readonly reason: UnsafePathReason;
  readonly status: 400 | 404;

  constructor(reason: UnsafePathReason, message: string) {
    super(message);
    this.name = "UnsafePathError";
    this.reason = reason;
    this.status = reason === "bad-name" ? 400 : 404;
  }
}

/** Whether `candidate` lies strictly below `base` (both absolute, already normalized). */
export function isStrictlyInside(base: string, candidate: string): boolean {
  const rel = relative(base, candidate);
  return rel !== "" && !isAbsolute(rel) && rel !== ".." && !rel.startsWith(`..${sep}`);
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * The absolute path of `names` (one segment or several) under `baseDir`, proven to stay inside it.
 * The final file need not exist (to create it); its existing ancestors are checked. `baseDir` itself
 * may be reached through links (it is resolved first): it is the agent's own configuration.
 */
export async function resolveInside(baseDir: string, names: string | readonly string[]): Promise<string> {
  const segments = typeof names === "string" ? [names] : [...names];
  if (segments.length === 0) throw new UnsafePathError("bad-name", "no name to resolve");
  segments.forEach((segment, i) => {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw new UnsafePathError("bad-name", `path segment ${i + 1} ${problem}`);
  });
  const base = await realpath(baseDir);
  let current = base;
  let existing = true;
  for (const [i, segment] of segments.entries()) {
    const next = join(current, segment.normalize("NFC"));
    if (!isStrictlyInside(base, next)) throw new UnsafePathError("outside-base", `path segment ${i + 1} leaves the base directory`);
    current = next;
    if (!existing) continue;
    const stat = await lstatOrUndefined(current);
    if (stat === undefined) {
      existing = false;
      continue;
    }
    if (stat.isSymbolicLink()) throw new UnsafePathError("symlink", `path segment ${i + 1} is a symbolic link`);
    if (i < segments.length - 1 && !stat.isDirectory()) throw new UnsafePathError("not-a-directory", `path segment ${i + 1} is not a directory`);
  }
  // The parent as the kernel sees it must be the parent we built: no link, mount trick or race moved it.
  const parent = dirname(current);
  const realParent = await realpath(parent).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (realParent !== undefined && realParent !== parent) throw new UnsafePathError("outside-base", "the parent directory resolves elsewhere");
  return current;
}

/**
 * Opens a regular file under `baseDir` for the agent: `resolveInside`, then open without following a
 * final link, then check what was opened. `flags` are fs open flags (numbers), e.g.
 * `constants.O_RDONLY` or `constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL`.
 */
export async function openInside(baseDir: string, names: string | readonly string[], flags: number = constants.O_RDONLY, mode = 0o600): Promise<FileHandle> {
  const path = await resolveInside(baseDir, names);
  let handle: FileHandle;
  try {
    handle = await open(path, flags | constants.O_NOFOLLOW, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ELOOP") throw new UnsafePathError("symlink", "the file is a symbolic link");
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new UnsafePathError("not-a-file", "not a regular file");
    if (stat.nlink > 1) throw new UnsafePathError("hard-link", "the file has other hard links: it may be shared with a file outside the base");
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}
