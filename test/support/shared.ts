import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The project's sample data set (real ComfyUI prompts, WfCommons traces) lives in a `shared/`
 * folder beside the checkout when it is there. Tests that read it skip, with a note, when it is not.
 */
export function sharedDataDir(sub: "comfyui" | "wfinstances"): string | null {
  const dir = fileURLToPath(new URL(`../../../shared/data/${sub}`, import.meta.url));
  if (existsSync(dir)) return dir;
  console.warn(`note: ../shared/data/${sub} is absent; tests over it are skipped`);
  return null;
}
