/**
 * Stage processes outlive an agent that is killed: they run in their own process groups. When the
 * store's recover() reports the attempts that were open, the restarted agent stops what is left of
 * them before their stages rerun, so an old attempt neither holds GPU memory nor races the new one.
 * Linux only (it reads /proc); elsewhere nothing is found and nothing is killed.
 */
import { readFileSync, readdirSync } from "node:fs";

export interface OrphanCandidate {
  readonly pid: number | null;
  readonly runId: string;
  readonly stageId: string;
  readonly number: number;
}

/** `stopped`: its process group was killed. `gone`: nothing of it runs. `not-ours`: the pid now belongs to another program. */
export type OrphanOutcome = "stopped" | "gone" | "not-ours";

/**
 * Kills what remains of an interrupted attempt: the processes of its group (the stage's pid was the
 * group id), after checking from the environment the agent gave them that they belong to that attempt
 * and the ids were not reused by another program.
 */
export function stopOrphanedAttempt(attempt: OrphanCandidate): OrphanOutcome {
  if (attempt.pid === null || attempt.pid <= 1) return "gone";
  const members = groupMembers(attempt.pid);
  if (members.length === 0) return "gone";
  const ours = members.some((pid) => {
    const env = environmentOf(pid);
    return (
      env?.get("GPUFABRIC_RUN_ID") === attempt.runId &&
      env.get("GPUFABRIC_STAGE_ID") === attempt.stageId &&
      env.get("GPUFABRIC_ATTEMPT") === String(attempt.number)
    );
  });
  if (!ours) return "not-ours";
  try {
    process.kill(-attempt.pid, "SIGKILL");
    return "stopped";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return "gone";
    throw err;
  }
}

/** Live (not zombie) processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // After the command name: state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") members.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return members;
}

function environmentOf(pid: number): Map<string, string> | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
    return new Map(
      raw
        .split("\0")
        .filter((kv) => kv.includes("="))
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const)
    );
  } catch {
    return undefined;
  }
}
