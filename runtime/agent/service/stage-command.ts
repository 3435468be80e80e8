/**
 * Stage commands name their programs relative to the directory the workflow was written for (a
 * repository root: `node examples/workflows/stages/render.mjs`), while the process executor runs them
 * inside a fresh workspace. The agent resolves such arguments against its command directory.
 */
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join, normalize } from "node:path";
import type { Stage } from "../../graph/model.ts";

/**
 * Arguments that are relative paths (they hold a `/`, no `..`, no leading `-`) and name a file that
 * exists under `commandDir` become absolute; everything else is passed unchanged.
 */
export function resolveStageCommand(stage: Stage, commandDir: string): Stage {
  const command = stage.run?.command;
  if (!command || command.length === 0) return stage;
  let changed = false;
  const resolved = command.map((arg) => {
    if (isAbsolute(arg) || arg.startsWith("-") || !arg.includes("/") || normalize(arg).startsWith("..")) return arg;
    const candidate = join(commandDir, arg);
    if (!existsSync(candidate) || !statSync(candidate).isFile()) return arg;
    changed = true;
    return candidate;
  });
  return changed ? { ...stage, run: { ...stage.run!, command: resolved } } : stage;
}
