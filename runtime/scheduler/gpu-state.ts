/**
 * Mutable per-GPU bookkeeping with the indexes the hot path needs: GPUs with a free slot bucketed
 * by available VRAM (GiB), and per model the GPUs with a free slot that hold it.
 */
import { MIB_PER_GIB, type GpuSpec } from "./inventory.ts";

/** A GPU's place in one GpuList: one link per GPU and list kind, so adding and removing allocate nothing. */
export class GpuLink {
  prev: GpuLink | null = null;
  next: GpuLink | null = null;
  list: GpuList | null = null;
  constructor(readonly gpu: GpuState) {}
}

/**
 * GPUs in the order a Set would iterate them (insertion order; adding one already there keeps its
 * place), as an intrusive list: no hash table to grow and shrink, no iterator objects to walk it.
 */
export class GpuList {
  first: GpuLink | null = null;
  last: GpuLink | null = null;
  size = 0;

  add(l: GpuLink): void {
    if (l.list === this) return;
    if (l.list !== null) throw new Error("a GPU link is in one list at a time");
    l.prev = this.last;
    l.next = null;
    if (this.last === null) this.first = l;
    else this.last.next = l;
    this.last = l;
    l.list = this;
    this.size++;
  }

  delete(l: GpuLink): void {
    if (l.list !== this) return;
    if (l.prev === null) this.first = l.next;
    else l.prev.next = l.next;
    if (l.next === null) this.last = l.prev;
    else l.next.prev = l.prev;
    l.prev = null;
    l.next = null;
    l.list = null;
    this.size--;
  }

  /** The GPUs, first to last (for tests and cold paths). */
  toArray(): GpuState[] {
    const out: GpuState[] = [];
    for (let l = this.first; l !== null; l = l.next) out.push(l.gpu);
    return out;
  }
}

export interface ResidentModel {
  readonly name: string;
  readonly mib: number;
  lastUse: number;
  /** Running stages using it; an idle model (0) may be evicted. */
  inUse: number;
  /** Its GPU's place among the GPUs with a free slot that hold the model, and that list (found once, not per slot change). */
  readonly freeLink: GpuLink;
  readonly freeList: GpuList;
  /** Its GPU's place among all the GPUs that hold the model. */
  readonly holderLink: GpuLink;
}

export class GpuState {
  readonly usableMiB: number;
  freeSlots: number;
  runningMiB = 0;
  idleResidentMiB = 0;
  readonly resident = new Map<string, ResidentModel>();
  /** The same models in the map's order, walked without iterator objects. */
  readonly residentList: ResidentModel[] = [];
  bucket = -1;
  readonly bucketLink: GpuLink;
  /** Its place in GpuIndex.freeWithModels. */
  readonly freeLink: GpuLink;
  /**
   * Expected end times of the stages running on it, from their estimates, in no particular order:
   * the first `runningEnds` of a typed array sized by its slots (an array emptied by splice gave its
   * storage back, and the next placement allocated it again).
   */
  private ends: Float64Array;
  runningEnds = 0;
  /**
   * Out of service (its node's worker is gone): its slots are held by `offlineSlots` instead of stages,
   * so no search finds it free, and slots its stages give back stay held until it is back.
   */
  offline = false;
  offlineSlots = 0;
  /** Index of its size class among the pool's distinct usable sizes (0: smallest). */
  sizeClass = 0;
  /** Itself, its id and its index as one-element lists, shared by every 1-GPU placement on it. */
  readonly asList: readonly GpuState[];
  readonly idList: readonly string[];
  readonly indexList: readonly number[];

  constructor(
    readonly index: number,
    readonly spec: GpuSpec,
    readonly node: number,
    headroomMiB: number,
  ) {
    this.usableMiB = Math.max(0, spec.memoryMiB - headroomMiB);
    this.freeSlots = spec.slots;
    this.asList = Object.freeze([this]);
    this.idList = Object.freeze([spec.id]);
    this.indexList = Object.freeze([index]);
    this.ends = new Float64Array(Math.max(1, spec.slots));
    this.bucketLink = new GpuLink(this);
    this.freeLink = new GpuLink(this);
  }

  addEnd(t: number): void {
    if (this.runningEnds === this.ends.length) {
      const more = new Float64Array(this.ends.length * 2);
      more.set(this.ends);
      this.ends = more;
    }
    this.ends[this.runningEnds++] = t;
  }

  /** Forgets one end time equal to `t`, if any. */
  removeEnd(t: number): void {
    const ends = this.ends;
    const n = this.runningEnds;
    for (let i = 0; i < n; i++) {
      if (ends[i] === t) {
        ends[i] = ends[n - 1]!;
        this.runningEnds = n - 1;
        return;
      }
    }
  }

  /** The earliest expected end of its running stages (Infinity: none). */
  soonestEnd(): number {
    let soonest = Infinity;
    for (let i = 0; i < this.runningEnds; i++) if (this.ends[i]! < soonest) soonest = this.ends[i]!;
    return soonest;
  }

  /** VRAM a new stage can get, counting idle resident models as reclaimable. */
  get availableMiB(): number {
    return this.usableMiB - this.runningMiB;
  }

  /** VRAM a stage of `model` gets without evicting anything (its own idle model is reused). */
  freeWithoutEviction(model: string | undefined): number {
    let free = this.usableMiB - this.runningMiB - this.idleResidentMiB;
    if (model !== undefined) {
      const own = this.resident.get(model);
      if (own !== undefined && own.inUse === 0) free += own.mib;
    }
    return free;
  }
}

export class GpuIndex {
  readonly gpus: GpuState[];
  readonly nodes: string[];
  readonly nodeGpus: GpuState[][];
  readonly nodeFreeSlots: number[];
  /** nodesByFree[k]: nodes with exactly k free slots, so the most free on one node is found in a few steps. */
  private readonly nodesByFree: number[];
  /** buckets[k]: GPUs with a free slot and floor(availableMiB / 1 GiB) = k. */
  readonly buckets: GpuList[];
  private readonly modelFree = new Map<string, GpuList>();
  /** Every GPU holding a model, busy or not. */
  private readonly modelHolders = new Map<string, GpuList>();
  /** Distinct usable sizes, ascending. */
  readonly sizeClasses: number[];
  /** Free slots per size class. */
  readonly freeByClass: number[];
  /** GPUs with a free slot that hold at least one model: where a queued stage could skip a load. */
  readonly freeWithModels = new GpuList();
  freeSlots = 0;
  readonly totalMiB: number;
  readonly largestUsableMiB: number;

  constructor(specs: readonly GpuSpec[], headroomMiB: number) {
    const nodeIndex = new Map<string, number>();
    this.nodes = [];
    this.nodeGpus = [];
    this.nodeFreeSlots = [];
    this.gpus = specs.map((spec, i) => {
      let n = nodeIndex.get(spec.node);
      if (n === undefined) {
        n = this.nodes.length;
        nodeIndex.set(spec.node, n);
        this.nodes.push(spec.node);
        this.nodeGpus.push([]);
        this.nodeFreeSlots.push(0);
      }
      const g = new GpuState(i, spec, n, headroomMiB);
      this.nodeGpus[n]!.push(g);
      return g;
    });
    this.largestUsableMiB = this.gpus.reduce((m, g) => Math.max(m, g.usableMiB), 0);
    this.sizeClasses = [...new Set(this.gpus.map((g) => g.usableMiB))].sort((a, b) => a - b);
    this.freeByClass = this.sizeClasses.map(() => 0);
    for (const g of this.gpus) {
      g.sizeClass = this.sizeClasses.indexOf(g.usableMiB);
      this.freeByClass[g.sizeClass]! += g.freeSlots;
    }
    this.totalMiB = this.gpus.reduce((m, g) => m + g.usableMiB, 0);
    const nodeSlots = this.nodeGpus.map((list) => list.reduce((m, g) => m + g.spec.slots, 0));
    this.nodesByFree = new Array<number>(Math.max(...nodeSlots) + 1).fill(0);
    for (const slots of nodeSlots) this.nodesByFree[slots]!++;
    this.buckets = Array.from({ length: Math.floor(this.largestUsableMiB / MIB_PER_GIB) + 1 }, () => new GpuList());
    for (const g of this.gpus) {
      this.freeSlots += g.freeSlots;
      this.nodeFreeSlots[g.node]! += g.freeSlots;
      this.rebucket(g);
    }
  }

  /** Puts the GPU in the bucket matching its availability (none when it has no free slot). */
  rebucket(g: GpuState): void {
    const want = g.freeSlots > 0 ? Math.max(0, Math.floor(g.availableMiB / MIB_PER_GIB)) : -1;
    if (want === g.bucket) return;
    if (g.bucket >= 0) this.buckets[g.bucket]!.delete(g.bucketLink);
    if (want >= 0) this.buckets[want]!.add(g.bucketLink);
    g.bucket = want;
  }

  /** Size class of the smallest GPUs that can hold `mib` (sizeClasses.length when none can). */
  classFor(mib: number): number {
    const sizes = this.sizeClasses;
    for (let c = 0; c < sizes.length; c++) if (sizes[c]! >= mib) return c;
    return sizes.length;
  }

  gpusWithModel(model: string): GpuList | undefined {
    return this.modelFree.get(model);
  }

  holdersOf(model: string): GpuList | undefined {
    return this.modelHolders.get(model);
  }

  /** The most free slots on one node. */
  maxNodeFree(): number {
    const counts = this.nodesByFree;
    let k = counts.length - 1;
    while (k > 0 && counts[k] === 0) k--;
    return k;
  }

  takeSlot(g: GpuState): void {
    g.freeSlots--;
    this.freeSlots--;
    this.freeByClass[g.sizeClass]!--;
    const free = this.nodeFreeSlots[g.node]!--;
    this.nodesByFree[free]!--;
    this.nodesByFree[free - 1]!++;
    if (g.freeSlots === 0) {
      const list = g.residentList;
      for (let i = 0; i < list.length; i++) list[i]!.freeList.delete(list[i]!.freeLink);
      this.freeWithModels.delete(g.freeLink);
    }
  }

  releaseSlot(g: GpuState): void {
    if (g.freeSlots === 0) {
      const list = g.residentList;
      for (let i = 0; i < list.length; i++) this.trackModel(list[i]!, g);
    }
    g.freeSlots++;
    this.freeSlots++;
    this.freeByClass[g.sizeClass]!++;
    const free = this.nodeFreeSlots[g.node]!++;
    this.nodesByFree[free]!--;
    this.nodesByFree[free + 1]!++;
  }

  addResident(g: GpuState, model: string, mib: number, now: number): void {
    let free = this.modelFree.get(model);
    if (free === undefined) {
      free = new GpuList();
      this.modelFree.set(model, free);
    }
    const m: ResidentModel = { name: model, mib, lastUse: now, inUse: 1, freeLink: new GpuLink(g), freeList: free, holderLink: new GpuLink(g) };
    g.resident.set(model, m);
    g.residentList.push(m);
    if (g.freeSlots > 0) this.trackModel(m, g);
    let holders = this.modelHolders.get(model);
    if (holders === undefined) {
      holders = new GpuList();
      this.modelHolders.set(model, holders);
    }
    holders.add(m.holderLink);
  }

  evict(g: GpuState, model: string): void {
    const m = g.resident.get(model);
    if (m === undefined || m.inUse > 0) return;
    g.resident.delete(model);
    g.residentList.splice(g.residentList.indexOf(m), 1);
    g.idleResidentMiB -= m.mib;
    m.freeList.delete(m.freeLink);
    this.modelHolders.get(model)?.delete(m.holderLink);
    if (g.resident.size === 0) this.freeWithModels.delete(g.freeLink);
  }

  private trackModel(m: ResidentModel, g: GpuState): void {
    m.freeList.add(m.freeLink);
    this.freeWithModels.add(g.freeLink);
  }
}
