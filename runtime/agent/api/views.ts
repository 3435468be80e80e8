/** Pure views of the API: how a run and a stage's wait look to clients. */
import type { WaitReason } from "../../scheduler/index.ts";
import type { GpuDevice } from "../inventory/types.ts";
import type { EventRecord, RunDetail } from "../store/types.ts";
import { attemptPhases } from "../service/attempt-phases.ts";
import type { RunQueue } from "../service/run-queue.ts";

/**
 * The run as clients see it: stages with their latest attempt and why they wait, the dependency edges,
 * every attempt with its phases (from `events`, the run's events: see attempt-phases.ts), artifacts, and
 * what is simulated.
 */
export function runView(detail: RunDetail, loop: RunQueue, devices: readonly GpuDevice[], events: readonly EventRecord[] = []) {
  const simulatedDevices = new Set(devices.filter((d) => d.simulated).map((d) => d.id));
  const latestAttempt = new Map<string, RunDetail["attempts"][number]>();
  for (const a of detail.attempts) if ((latestAttempt.get(a.stageId)?.number ?? 0) < a.number) latestAttempt.set(a.stageId, a);
  const stages = detail.stages.map((s) => {
    const latest = latestAttempt.get(s.stageId);
    const noCommand = !(s.spec.run && s.spec.run.command.length > 0);
    // A ComfyUI stage has no command: it ran on a ComfyUI server unless its attempt says it was simulated (no server configured).
    const comfy = noCommand && (s.spec.comfyNodes?.length ?? 0) > 0 && latest?.simulated !== true;
    const simulated = Boolean(latest?.simulated) || (latest !== undefined && ((noCommand && !comfy) || latest.gpus.some((g) => simulatedDevices.has(g))));
    const wait = s.status === "waiting" || s.status === "ready" ? loop.explain(detail.run.id, s.stageId) : null;
    return {
      id: s.stageId,
      status: s.status,
      needs: s.needs,
      gpus: latest?.gpus ?? [],
      /** The node of its latest attempt's GPUs (a cluster's worker node), null before it was placed. */
      node: latest?.gpus[0] === undefined ? null : (devices.find((d) => d.id === latest.gpus[0])?.node ?? null),
      attempts: s.attempts,
      startedAt: latest?.startedAt ?? null,
      finishedAt: latest?.finishedAt ?? null,
      exitCode: latest?.exitCode ?? null,
      // A stage backing off says until when, then why its last attempt failed.
      reason: wait?.code === "backoff" ? `${describeWait(wait)}; last attempt: ${latest?.reason ?? "failed"}` : (latest?.reason ?? (wait ? describeWait(wait) : null)),
      executor: comfy ? "comfyui" : noCommand ? "simulated" : "process",
      simulated,
      ...(latest?.peakVramMiB != null && { peakVramMiB: latest.peakVramMiB }),
      wait: wait ? { code: wait.code, text: describeWait(wait) } : null,
    };
  });
  const nodeOf = (gpu: string | undefined) => (gpu === undefined ? null : (devices.find((d) => d.id === gpu)?.node ?? null));
  const phases = attemptPhases(detail.attempts, events, detail.run.createdAt);
  const attempts = detail.attempts.map((a) => ({
    stageId: a.stageId,
    number: a.number,
    status: a.status,
    gpus: a.gpus,
    node: nodeOf(a.gpus[0]),
    placedAt: a.placedAt,
    phases: phases.get(a.id)!,
    peakVramMiB: a.peakVramMiB,
    reason: a.reason,
    simulated: a.simulated || a.gpus.some((g) => simulatedDevices.has(g)),
  }));
  return {
    id: detail.run.id,
    status: detail.run.status,
    tenant: detail.run.tenant,
    workflow: detail.run.workflow,
    format: detail.run.format,
    priority: detail.run.priority,
    submittedBy: detail.run.submittedBy,
    createdAt: detail.run.createdAt,
    updatedAt: detail.run.updatedAt,
    simulated: stages.some((s) => s.simulated),
    stages,
    edges: detail.stages.flatMap((s) => s.needs.map((from) => ({ from, to: s.stageId }))),
    attempts,
    artifacts: detail.artifacts.map((a) => ({ name: a.name, stage: a.stageId, bytes: a.bytes, sha256: a.sha256 })),
  };
}

export function describeWait(reason: WaitReason): string {
  switch (reason.code) {
    case "dependencies":
      return `waiting for ${reason.pending.join(", ")}`;
    case "no-fit":
      return `no GPU has ${reason.needMiB} MiB free now (best ${reason.bestAvailableMiB} MiB, ${reason.freeGpus} GPU(s) free)`;
    case "gang":
      return `needs ${reason.gpus} GPUs with ${reason.needMiB} MiB on one node (best node has ${reason.bestNodeFitting})`;
    case "quota":
      return `tenant ${reason.resource} quota: holds ${reason.held}, asks ${reason.requested}, quota ${reason.quota}`;
    case "priority":
      return `${reason.ahead} stage(s) ahead at level ${reason.level}`;
    case "reserved":
      return `GPUs kept for stage ${reason.forStage}`;
    case "affinity":
      return `waiting for GPU ${reason.gpu} that holds model ${reason.model} (free in ~${reason.expectedFreeInS.toFixed(1)} s)`;
    case "kept-for-larger":
      return `the free GPUs are kept for ${reason.waitingLarger} larger waiting stage(s)`;
    case "backoff":
      // The agent's scheduler runs on epoch seconds.
      return `retrying after a failed attempt: waits until ${new Date(reason.until * 1000).toISOString()} (retry.backoffSeconds)`;
  }
}
