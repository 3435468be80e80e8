/**
 * Brings a finished prompt's files home: every file each output node lists in the history is fetched
 * with `/view` into the attempt's outputs folder, and the manifest (`comfyui-outputs.json`) records each
 * node's UI output with the artifact holding each file. Handoff images (the `gf-` SaveImage nodes) are
 * kept under their own names for the stages on other GPUs; they stay out of the manifest.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { artifactNameProblem } from "../output-names.ts";
import type { ComfyClient, HistoryEntry } from "./client.ts";
import { COMFY_OUTPUTS_ARTIFACT, type ComfyOutputsManifest } from "./contract.ts";

interface FileRef {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: string;
}

const isFileRef = (v: unknown): v is FileRef & Record<string, unknown> =>
  v !== null && typeof v === "object" && typeof (v as FileRef).filename === "string" && ((v as FileRef).subfolder === undefined || typeof (v as FileRef).subfolder === "string");

/** The artifact name of a file ComfyUI wrote: its name, or `<subfolder with / as ->-<name>` from a subfolder. */
export function artifactNameOf(file: { filename: string; subfolder?: string }): string {
  const sub = (file.subfolder ?? "").replace(/^\/+|\/+$/g, "");
  return sub === "" ? file.filename : `${sub.replaceAll("/", "-")}-${file.filename}`;
}

export interface FetchedOutputs {
  readonly manifest: ComfyOutputsManifest;
  /** Names written to the outputs folder (the manifest included). */
  readonly files: string[];
}

/**
 * Fetches the files and writes the manifest. `own`: the prompt's own nodes; `handoffNodes`: the added
 * SaveImage nodes whose files later stages read. Throws naming the file it could not take.
 */
export async function fetchOutputs(
  client: ComfyClient,
  entry: HistoryEntry,
  outputsDir: string,
  own: ReadonlySet<string>,
  handoffNodes: ReadonlySet<string>,
  progress: { readonly executed: readonly string[]; readonly cached: readonly string[] }
): Promise<FetchedOutputs> {
  const used = new Set<string>([COMFY_OUTPUTS_ARTIFACT]);
  const files: string[] = [];
  const nodes: Record<string, Record<string, unknown>> = {};
  const take = async (ref: FileRef, name: string): Promise<void> => {
    const problem = artifactNameProblem(name);
    if (problem) throw new Error(`the file '${name}' ComfyUI wrote cannot be kept as an artifact: its name ${problem}`);
    const bytes = await client.view({ filename: ref.filename, subfolder: ref.subfolder ?? "", type: ref.type ?? "output" });
    await writeFile(join(outputsDir, name), bytes, { flag: "wx" });
    used.add(name);
    files.push(name);
  };
  for (const [nodeId, ui] of Object.entries(entry.outputs ?? {})) {
    if (handoffNodes.has(nodeId)) {
      for (const ref of Object.values(ui).flatMap((v) => (Array.isArray(v) ? v.filter(isFileRef) : []))) {
        // Named as SaveImage wrote them: the next stage finds them by their prefix.
        if (!used.has(ref.filename)) await take(ref, ref.filename);
      }
      continue;
    }
    if (!own.has(nodeId)) continue;
    const copy: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(ui)) {
      if (!Array.isArray(value)) {
        copy[key] = value;
        continue;
      }
      const list: unknown[] = [];
      for (const item of value) {
        if (!isFileRef(item)) {
          list.push(item);
          continue;
        }
        let name = artifactNameOf(item);
        // Two files of one name (an output and a temp preview): the second carries its folder type.
        if (used.has(name)) name = `${String(item.type ?? "output")}-${name}`;
        for (let n = 2; used.has(name); n++) name = `${n}-${artifactNameOf(item)}`;
        await take(item, name);
        list.push({ ...item, subfolder: item.subfolder ?? "", type: item.type ?? "output", artifact: name });
      }
      copy[key] = list;
    }
    nodes[nodeId] = copy;
  }
  const manifest: ComfyOutputsManifest = {
    version: 1,
    nodes,
    executed: progress.executed.filter((id) => own.has(id)),
    cached: progress.cached.filter((id) => own.has(id)),
  };
  await writeFile(join(outputsDir, COMFY_OUTPUTS_ARTIFACT), JSON.stringify(manifest, null, 2), { flag: "wx" });
  files.push(COMFY_OUTPUTS_ARTIFACT);
  return { manifest, files };
}
