/**
 * At start the agent proves it can isolate stages: it finds bwrap and prlimit, decides whether stages
 * get uids of their own (the agent may change users) or share the agent's behind namespaces, and runs
 * one trivial stage through the real sandbox. If any of that fails the agent does not start, unless it
 * was told `--unsafe-shared-identity`.
 */
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { IsolationConfig } from "../../config/schema.ts";
import { LocalSpawner, type StageSpawner } from "../executors/spawner.ts";
import { StageSandbox, resolveProgram, type SandboxIdentity } from "./sandbox.ts";

export interface ProbeInput {
  readonly isolation: IsolationConfig;
  readonly tenants: readonly string[];
  readonly protectedPaths: readonly string[];
  /** The scratch area stages will work in: the trial stage works there too, so a folder it cannot pass fails here. */
  readonly scratchDir: string;
  /** PATH to look for bwrap and prlimit in (default: the agent's). */
  readonly path?: string;
  /** Where the trial stage starts (default: as the agent's child); a runner's stages run in its container. */
  readonly spawner?: StageSpawner;
  /** Whether stages may get uids of their own (default: when this process may change users). */
  readonly perTenantUids?: boolean;
}

export type ProbeResult =
  | { readonly ok: true; readonly sandbox: StageSandbox; readonly identity: SandboxIdentity["mode"] }
  | { readonly ok: false; readonly reason: string };

/**
 * Whether stages can get uids of their own: the agent runs as root, so bwrap can build the sandbox
 * without a user namespace and setpriv can drop the stage to its tenant's uid. (CAP_SETUID alone is not
 * enough: without CAP_SYS_ADMIN bwrap needs a user namespace, where other uids are not mapped.)
 */
export function canChangeUsers(): boolean {
  return process.getuid?.() === 0;
}

export async function probeSandbox(input: ProbeInput): Promise<ProbeResult> {
  const path = input.path ?? process.env.PATH ?? "/usr/bin:/bin";
  const bwrap = resolveProgram("bwrap", path);
  if (bwrap === null) return { ok: false, reason: "bubblewrap (bwrap) is not installed: install it (Debian: apt-get install bubblewrap)" };
  const prlimit = resolveProgram("prlimit", path);
  if (prlimit === null) return { ok: false, reason: "prlimit (util-linux) is not installed: install util-linux" };
  const setpriv = resolveProgram("setpriv", path);
  const perTenant = input.perTenantUids ?? canChangeUsers();
  if (perTenant && setpriv === null) return { ok: false, reason: "setpriv (util-linux) is not installed: install util-linux" };
  const identity: SandboxIdentity = {
    mode: perTenant ? "per-tenant" : "agent",
    uidRangeStart: input.isolation.uidRangeStart,
    tenants: input.tenants,
  };
  const sandbox = new StageSandbox({ bwrap, prlimit, setpriv, identity, isolation: input.isolation, protectedPaths: input.protectedPaths });
  const dir = mkdtempSync(join(input.scratchDir, "probe-"));
  try {
    for (const sub of ["inputs", "outputs", "tmp"]) mkdirSync(join(dir, sub));
    const launch = await sandbox.prepare({
      tenant: input.tenants[0],
      command: ["/bin/sh", "-c", "echo ok > /stage/outputs/probe"],
      env: { PATH: "/usr/bin:/bin" },
      network: false,
      timeoutS: 10,
      realGpus: false,
      workspace: dir,
      inputs: join(dir, "inputs"),
      outputs: join(dir, "outputs"),
      tmp: join(dir, "tmp"),
    });
    const spawner = input.spawner ?? new LocalSpawner();
    const result = await spawner
      .spawn({ ...launch, env: { PATH: "/usr/bin:/bin" } })
      .then(
        (child) =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            let stderr = "";
            child.stdout.resume();
            child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(0, 4096)));
            child.on("error", (err) => resolve({ code: null, stderr: err.message }));
            child.on("close", () => resolve({ code: exitCode, stderr }));
            let exitCode: number | null = null;
            child.on("exit", (code) => (exitCode = code));
          })
      )
      .catch((err: Error) => ({ code: null, stderr: err.message }));
    let wrote = "";
    try {
      wrote = readFileSync(join(dir, "outputs", "probe"), "utf8");
    } catch {
      // checked below
    }
    if (result.code !== 0 || wrote.trim() !== "ok") {
      return {
        ok: false,
        reason: `a trial stage could not run in the bubblewrap sandbox (exit ${result.code}): ${result.stderr.trim().split("\n")[0] || "no output written"}; the kernel must allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0), and a container needs a seccomp profile that allows them`,
      };
    }
    return { ok: true, sandbox, identity: identity.mode };
  } catch (err) {
    return { ok: false, reason: `the sandbox could not be prepared: ${(err as Error).message}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
