/**
 * Min-min and max-min (Ibarra & Kim, JACM 24(2), 1977; as batch-mode mappers in Braun et al., JPDC
 * 61(6), 2001), applied to a DAG the usual way: the batch is the set of ready stages (all parents
 * mapped). For each ready stage its minimum completion time over the GPUs is max(GPU free, parents
 * done) + duration; min-min maps the stage whose minimum is smallest, max-min the one whose minimum
 * is largest (long stages first), each to the GPU giving that minimum. No insertion: a GPU is free
 * after its last mapped stage, as in the original mappers. On identical GPUs nothing reduces: the
 * completion time differs between GPUs only by when each is free.
 */
import type { RefProblem, RefSchedule } from "./schedule.ts";

function batchMapper(p: RefProblem, pickLargest: boolean): RefSchedule {
  const n = p.durations.length;
  const start = new Array<number>(n).fill(0);
  const finish = new Array<number>(n).fill(0);
  const gpu = new Array<number>(n).fill(0);
  const free = new Array<number>(p.machines).fill(0);
  const pending = p.dag.parents.map((ps) => ps.length);
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (pending[i] === 0) ready.push(i);
  while (ready.length > 0) {
    let pick = -1;
    let pickAt = 0;
    let pickGpu = 0;
    let pickCompletion = 0;
    ready.forEach((i, at) => {
      let dataReady = 0;
      for (const parent of p.dag.parents[i]!) dataReady = Math.max(dataReady, finish[parent]!);
      let g = 0;
      for (let k = 1; k < p.machines; k++) if (free[k]! < free[g]!) g = k;
      const completion = Math.max(free[g]!, dataReady) + p.durations[i]!;
      // The GPU free first gives the minimum completion on identical GPUs (lowest index on ties).
      const better = pick < 0 || (pickLargest ? completion > pickCompletion : completion < pickCompletion) || (completion === pickCompletion && i < pick);
      if (better) [pick, pickAt, pickGpu, pickCompletion] = [i, at, g, completion];
    });
    ready.splice(pickAt, 1);
    start[pick] = pickCompletion - p.durations[pick]!;
    finish[pick] = pickCompletion;
    gpu[pick] = pickGpu;
    free[pickGpu] = pickCompletion;
    for (const c of p.dag.children[pick]!) if (--pending[c]! === 0) ready.push(c);
  }
  return { start, finish, gpu, makespan: finish.reduce((a, b) => Math.max(a, b), 0) };
}

export function minMinSchedule(p: RefProblem): RefSchedule {
  return batchMapper(p, false);
}

export function maxMinSchedule(p: RefProblem): RefSchedule {
  return batchMapper(p, true);
}
