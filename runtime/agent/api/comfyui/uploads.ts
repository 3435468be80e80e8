/**
 * Images a tenant uploads (`POST /upload/image`) for its prompts' LoadImage nodes. Each is sealed like
 * every other file at rest, in a file named by a hash of the tenant and the name: no name a client
 * sends ever becomes a path. A prompt that names an upload carries its bytes in the run's sealed
 * inputs, so the stage that loads it finds it on whatever node it runs.
 */
import { createHash } from "node:crypto";
import { access, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { objectContext, readDecryptedFileToBuffer, writeEncryptedFile, type KeyProvider } from "../../../security/crypto/index.ts";
import { artifactNameProblem } from "../../executors/output-names.ts";

/** An upload's name as LoadImage refers to it: `name.png` or `sub/folder/name.png`, with ComfyUI's ` [input]` mark removed. */
export function uploadKey(value: string): string {
  return value.replace(/ \[(input|output|temp)\]$/, "");
}

/** Why a file name or subfolder a client sent is refused, or undefined. */
export function uploadNameProblem(filename: string, subfolder: string): string | undefined {
  const problem = artifactNameProblem(filename);
  if (problem !== undefined) return `filename ${problem}`;
  if (filename.startsWith(".")) return "filename must not start with '.'";
  if (subfolder === "") return undefined;
  if (subfolder.startsWith("/") || subfolder.length > 200) return "subfolder must be a relative folder name of at most 200 characters";
  for (const part of subfolder.split("/")) {
    const bad = artifactNameProblem(part);
    if (bad !== undefined || part.startsWith(".")) return `subfolder part '${part.slice(0, 40)}' ${bad ?? "must not start with '.'"}`;
  }
  return undefined;
}

export class ComfyUploads {
  constructor(
    private readonly keys: KeyProvider,
    private readonly root: string,
  ) {}

  private pathOf(tenant: string, key: string): string {
    return join(this.root, tenant, createHash("sha256").update(`${tenant}\0${key}`).digest("hex"));
  }

  private context(tenant: string, key: string) {
    return objectContext({ tenant, run: "comfyui-uploads", objectId: `comfyui-upload/${key}` });
  }

  async has(tenant: string, value: string): Promise<boolean> {
    try {
      await access(this.pathOf(tenant, uploadKey(value)));
      return true;
    } catch {
      return false;
    }
  }

  async read(tenant: string, value: string): Promise<Buffer | undefined> {
    const key = uploadKey(value);
    try {
      return await readDecryptedFileToBuffer(this.keys, this.context(tenant, key), this.pathOf(tenant, key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /**
   * Stores an upload as ComfyUI does: a taken name gets ` (1)`, ` (2)`, … before its extension unless
   * `overwrite`, or unless the bytes are the same (then the name is reused). Returns the name used.
   */
  async save(tenant: string, subfolder: string, filename: string, bytes: Buffer, overwrite: boolean): Promise<string> {
    const dot = filename.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [filename.slice(0, dot), filename.slice(dot)] : [filename, ""];
    let name = filename;
    for (let i = 1; !overwrite; i++) {
      const existing = await this.read(tenant, subfolder ? `${subfolder}/${name}` : name);
      if (existing === undefined || existing.equals(bytes)) break;
      name = `${stem} (${i})${ext}`;
    }
    const key = subfolder ? `${subfolder}/${name}` : name;
    const path = this.pathOf(tenant, key);
    await mkdir(join(this.root, tenant), { recursive: true, mode: 0o700 });
    // Written aside and renamed: a reader never sees half a file, a crash leaves the old one.
    const temp = `${path}.${process.pid}.${Date.now()}.part`;
    try {
      await writeEncryptedFile(this.keys, this.context(tenant, key), [bytes], temp);
      await rename(temp, path);
    } finally {
      await rm(temp, { force: true });
    }
    return name;
  }
}
