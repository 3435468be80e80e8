/**
 * Placement: where a stage goes. The GPU search for one stage (a single GPU, or a gang on one
 * node), the models to evict to make room, the node or GPU sizes a round keeps for a waiting
 * interactive-level stage, and why a stage fits nowhere. It reads the GPU index and the ready
 * counts and changes neither: committing a placement is the scheduler state's job.
 */
import type { GpuIndex, GpuState } from "./gpu-state.ts";
import { MIB_PER_GIB } from "./inventory.ts";
import { AVOID_ALL, AVOID_NONE, LEVELS, NONE, type StageState } from "./records.ts";
import type { WaitReason } from "./types.ts";

export class GpuSearch {
  /** Why the last GPU search came back empty, when not for lack of room. */
  refusal: WaitReason | null = null;
  /** This round, lower-level stages may not take GPUs this large (kept for a waiting interactive-level stage). */
  reservedMiB = Infinity;
  /**
   * This round, the node kept for a waiting interactive-level gang (-1: none): no stage examined
   * after the gang takes a GPU there, whatever its level, or gangs at the top level would starve
   * behind the 1-GPU stages that take each GPU as it frees.
   */
  reservedNode = -1;
  reservedReason: WaitReason | null = null;
  /** bestSingle's choice so far. */
  private bestGpu: GpuState | null = null;
  private bestScore = -Infinity;
  /**
   * No-fit reasons computed since the GPUs last changed, by GPUs and VRAM; the scheduler state
   * clears them (invalidate) whenever a placement or a release changes the GPUs. Few at a time, so
   * parallel lists searched in order and emptied by a count: Map.clear() allocated a new table at
   * every placement.
   */
  private readonly noFitKeys: number[] = [];
  private readonly noFitReasons: WaitReason[] = [];
  private noFitCount = 0;

  /**
   * @param index the GPUs and their availability indexes
   * @param readyByClass the state's ready GPU stages per queue level and size class (read, never written)
   */
  constructor(
    private readonly index: GpuIndex,
    private readonly readyByClass: readonly number[][],
  ) {}

  /** Forgets the no-fit reasons: the GPUs changed. */
  invalidate(): void {
    this.noFitCount = 0;
  }

  /** Starts a round: no reservations yet, no reasons computed against the GPUs as they were. */
  beginRound(): void {
    this.noFitCount = 0;
    this.reservedMiB = Infinity;
    this.reservedNode = -1;
    this.reservedReason = null;
  }

  /** Best GPUs for a stage now, or null. Prefers a resident model, then no eviction, then input locality, then the tightest fit. */
  findGpus(s: StageState, avoid: number, now: number): readonly GpuState[] | null {
    if (s.gpuCount === 1) {
      const best = this.bestSingle(s, avoid);
      if (best === null) return null;
      return this.worthWaitingForModel(s, best, now) ? null : best.asList;
    }
    return this.bestGang(s, avoid);
  }

  /** Whether the stage may take a slot of this GPU now; a refusal other than lack of room is noted in `refusal`. */
  fits(g: GpuState, s: StageState, avoid: number): boolean {
    if (g.freeSlots === 0 || g.availableMiB < s.vramMiB) return false;
    if (avoid !== AVOID_NONE) {
      if (g.node === this.reservedNode) {
        this.refusal ??= this.reservedReason;
        return false;
      }
      if (avoid === AVOID_ALL && g.usableMiB >= this.reservedMiB) return false;
    }
    if (g.sizeClass > s.sizeClass && s.gpuCount === 1) {
      // Take a larger GPU only when more of them are free than stages at this level or above need them.
      const spare = this.largerSpare(s.run.level, s.sizeClass);
      if (spare <= 0) {
        this.refusal ??= { code: "kept-for-larger", needMiB: s.vramMiB, waitingLarger: this.waitingLarger(s.run.level, s.sizeClass) };
        return false;
      }
    }
    return true;
  }

  /** Ready 1-GPU stages at `level` or above that need a GPU larger than size class `sizeClass`. */
  private waitingLarger(level: number, sizeClass: number): number {
    let n = 0;
    for (let l = level; l < LEVELS; l++) {
      const row = this.readyByClass[l]!;
      for (let c = sizeClass + 1; c < row.length; c++) n += row[c]!;
    }
    return n;
  }

  /**
   * Free GPUs larger than size class `sizeClass` that the waiting stages at `level` or above do not
   * need. Matched from the largest class down: a stage can use its own class or a larger one, never
   * a smaller one, so stages queued for the largest GPUs do not hold back free mid-size GPUs.
   */
  largerSpare(level: number, sizeClass: number): number {
    const free = this.index.freeByClass;
    let spare = 0;
    for (let c = free.length - 1; c > sizeClass; c--) {
      let waiting = 0;
      for (let l = level; l < LEVELS; l++) waiting += this.readyByClass[l]![c]!;
      spare = Math.max(0, spare + free[c]! - waiting);
    }
    return spare;
  }

  /**
   * Whether to leave the stage waiting for a busy GPU that holds its model: when that GPU is
   * expected to free up sooner than the model would load elsewhere. Bounded: a stage waits so at
   * most for its model's load time in all.
   */
  private worthWaitingForModel(s: StageState, best: GpuState, now: number): boolean {
    const model = s.model;
    const load = s.modelLoadS;
    if (model === undefined || load <= 0 || best.resident.has(model) || now - s.readyAt >= load) return false;
    const holders = this.index.holdersOf(model);
    if (holders === undefined) return false;
    let n = 0;
    for (let l = holders.first; l !== null; l = l.next) {
      if (++n > 32) break;
      const h = l.gpu;
      if (h.freeSlots > 0 || h.usableMiB < s.vramMiB) continue;
      const soonest = h.soonestEnd();
      const eta = Math.max(0, soonest - now);
      if (eta < load && now + eta - s.readyAt < load) {
        this.refusal = { code: "affinity", model, gpu: h.spec.id, expectedFreeInS: eta, modelLoadS: load };
        return true;
      }
    }
    return false;
  }

  /** How good a GPU is for a stage (higher is better). */
  private score(g: GpuState, s: StageState): number {
    const model = s.model;
    const resident = model !== undefined && g.resident.has(model);
    const noEviction = g.freeWithoutEviction(model) >= s.vramMiB;
    let locality = 0;
    // Indexed loops: for-of over the shared frozen lists is not optimized and allocates per step.
    const parents = s.parents;
    for (let i = 0; i < parents.length; i++) {
      const pgs = parents[i]!.gpus;
      for (let j = 0; j < pgs.length; j++) {
        const pg = pgs[j]!;
        if (pg === g) locality = 2;
        else if (pg.node === g.node && locality < 1) locality = 1;
      }
    }
    // Lexicographic preference folded into one number: saved load seconds dominate, then no eviction,
    // then locality, then a tighter fit (less VRAM left over), then the lower index.
    const saved = resident ? 1 + s.modelLoadS : 0;
    const leftover = (g.availableMiB - s.vramMiB) / (this.index.largestUsableMiB + 1);
    return saved * 1e6 + (noEviction ? 1e4 : 0) + locality * 1e2 - leftover * 10 - g.index * 1e-9;
  }

  /** Keeps `g` as bestSingle's choice if it scores higher than the one kept (fields, not a closure, spare an allocation per search). */
  private consider(g: GpuState, s: StageState): void {
    const sc = this.score(g, s);
    if (sc > this.bestScore) {
      this.bestGpu = g;
      this.bestScore = sc;
    }
  }

  /** The best single GPU: among the holders of its model, its parents' GPUs, and a few of each VRAM bucket that can hold it. */
  private bestSingle(s: StageState, avoid: number): GpuState | null {
    this.bestGpu = null;
    this.bestScore = -Infinity;
    const model = s.model;
    if (model !== undefined) {
      const holders = this.index.gpusWithModel(model);
      if (holders !== undefined) {
        let n = 0;
        for (let l = holders.first; l !== null; l = l.next) {
          const g = l.gpu;
          if (this.fits(g, s, avoid)) this.consider(g, s);
          if (++n >= 32) break;
        }
      }
    }
    const parents = s.parents;
    for (let i = 0; i < parents.length; i++) {
      const pgs = parents[i]!.gpus;
      for (let j = 0; j < pgs.length; j++) if (this.fits(pgs[j]!, s, avoid)) this.consider(pgs[j]!, s);
    }
    const buckets = this.index.buckets;
    let collected = 0;
    let cleanFound = false;
    for (let b = Math.floor(s.vramMiB / MIB_PER_GIB); b < buckets.length; b++) {
      // GPUs of one bucket are alike: looking at a few of each bounds the cost of a crowded bucket.
      const bucket = buckets[b]!;
      if (bucket.size === 0) continue;
      let looked = 0;
      for (let l = bucket.first; l !== null; l = l.next) {
        if (++looked > 4) break;
        const g = l.gpu;
        if (!this.fits(g, s, avoid)) continue;
        this.consider(g, s);
        collected++;
        if (g.freeWithoutEviction(model) >= s.vramMiB) cleanFound = true;
      }
      if (collected >= 6 || (cleanFound && collected >= 2)) break;
    }
    return this.bestGpu;
  }

  /** The best node for a gang and its best GPUs there. */
  private bestGang(s: StageState, avoid: number): GpuState[] | null {
    const need = s.gpuCount;
    let best: GpuState[] | null = null;
    let bestScore = -Infinity;
    if (this.index.maxNodeFree() < need) return null;
    for (let n = 0; n < this.index.nodes.length; n++) {
      if (this.index.nodeFreeSlots[n]! < need) continue;
      const fitting = this.index.nodeGpus[n]!.filter((g) => this.fits(g, s, avoid));
      if (fitting.length < need) continue;
      const scored = fitting.map((g) => ({ g, sc: this.score(g, s) })).sort((a, b) => b.sc - a.sc || a.g.index - b.g.index);
      const chosen = scored.slice(0, need);
      // Prefer nodes left with fewer free GPUs, so whole nodes stay free for larger gangs.
      const total = chosen.reduce((m, c) => m + c.sc, 0) / need - (fitting.length - need) * 1e-3;
      if (total > bestScore) {
        bestScore = total;
        best = chosen.map((c) => c.g);
      }
    }
    return best;
  }

  /** Idle resident models to unload, least recently used first, only as far as room is needed. */
  evictionsFor(s: StageState, gpus: readonly GpuState[]): readonly { gpu: GpuState; model: string }[] {
    let out: { gpu: GpuState; model: string }[] | null = null;
    const model = s.model;
    for (let i = 0; i < gpus.length; i++) {
      const g = gpus[i]!;
      let free = g.freeWithoutEviction(model);
      if (free >= s.vramMiB) continue;
      out ??= [];
      const idle = g.residentList.filter((m) => m.inUse === 0 && m.name !== model).sort((a, b) => a.lastUse - b.lastUse || (a.name < b.name ? -1 : 1));
      for (const m of idle) {
        if (free >= s.vramMiB) break;
        out.push({ gpu: g, model: m.name });
        free += m.mib;
      }
    }
    return out ?? NONE;
  }

  /** Keeps the GPUs that could serve a waiting interactive-level stage away from lower-level stages this round. */
  reserveFor(s: StageState): void {
    if (s.gpuCount === 1) {
      if (s.vramMiB < this.reservedMiB) this.reservedMiB = s.vramMiB;
      return;
    }
    // A gang keeps the node closest to holding it: stages there end and nothing lower starts.
    // One reserved node per round is enough to make progress and keeps the round cheap.
    if (this.reservedNode >= 0) return;
    let best = -1;
    let bestFree = -1;
    const free = this.index.nodeFreeSlots;
    const need = s.vramMiB;
    for (let n = 0; n < free.length; n++) {
      // A node cannot fit more stages than it has free slots: only nodes that could beat the best are counted.
      if (free[n]! <= bestFree) continue;
      let fitting = 0;
      let able = 0;
      const gpus = this.index.nodeGpus[n]!;
      for (let k = 0; k < gpus.length; k++) {
        const g = gpus[k]!;
        if (g.usableMiB >= need) able++;
        if (g.freeSlots > 0 && g.availableMiB >= need) fitting++;
      }
      if (able >= s.gpuCount && fitting > bestFree) {
        best = n;
        bestFree = fitting;
      }
    }
    if (best >= 0) {
      this.reservedNode = best;
      this.reservedReason = s.reservedFor ??= { code: "reserved", forStage: `${s.run.spec.id}/${s.spec.id}` };
    }
  }

  /** Why a stage fits nowhere now: the best node for a gang, or the most VRAM free on one GPU (kept until the GPUs change). */
  noFitReason(s: StageState): WaitReason {
    const key = s.gpuCount * 1e9 + s.vramMiB;
    const keys = this.noFitKeys;
    const n = this.noFitCount;
    for (let i = 0; i < n; i++) if (keys[i] === key) return this.noFitReasons[i]!;
    const reason = this.computeNoFitReason(s);
    keys[n] = key;
    this.noFitReasons[n] = reason;
    this.noFitCount = n + 1;
    return reason;
  }

  private computeNoFitReason(s: StageState): WaitReason {
    const need = s.vramMiB;
    if (s.gpuCount > 1) {
      let bestNode: string | null = null;
      let bestCount = -1;
      const free = this.index.nodeFreeSlots;
      for (let n = 0; n < free.length; n++) {
        // Only nodes that could beat the best so far are looked at GPU by GPU.
        if (free[n]! <= bestCount) continue;
        let c = 0;
        const gpus = this.index.nodeGpus[n]!;
        for (let k = 0; k < gpus.length; k++) if (gpus[k]!.freeSlots > 0 && gpus[k]!.availableMiB >= need) c++;
        if (c > bestCount) {
          bestCount = c;
          bestNode = this.index.nodes[n]!;
        }
      }
      return { code: "gang", gpus: s.gpuCount, needMiB: need, bestNode, bestNodeFitting: Math.max(0, bestCount) };
    }
    let best = 0;
    for (let b = this.index.buckets.length - 1; b >= 0; b--) {
      const set = this.index.buckets[b]!;
      if (set.size === 0) continue;
      let looked = 0;
      for (let l = set.first; l !== null; l = l.next) {
        const g = l.gpu;
        if (g.availableMiB > best) best = g.availableMiB;
        if (++looked >= 4) break;
      }
      break;
    }
    return { code: "no-fit", needMiB: need, bestAvailableMiB: best, largestGpuMiB: this.index.largestUsableMiB, freeGpus: this.index.freeSlots };
  }
}
