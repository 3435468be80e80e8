/** Runs a diagnostic program (nvidia-smi) with a timeout, and finds programs on a PATH. */
import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export type CommandResult = { readonly ok: true; readonly stdout: string } | { readonly ok: false; readonly message: string };

export function runCommand(file: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 8 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
      if (e.killed) return resolve({ ok: false, message: `'${file} ${args.join(" ")}' gave no answer within ${timeoutMs} ms` });
      const detail = (stderr || stdout || e.message).trim().split("\n")[0];
      resolve({
        ok: false,
        message: `'${file} ${args.join(" ")}' failed (${typeof e.code === "number" ? `exit code ${e.code}` : e.code ?? "error"}): ${detail}`,
      });
    });
  });
}

/** The first executable file called `name` in the PATH's folders, or undefined. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
