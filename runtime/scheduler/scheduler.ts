/**
 * The workflow-native scheduler: pure and deterministic (no I/O, no clock of its own: every call
 * takes `now`), shared by the live agent and the simulator. It keeps the ready stages of all runs
 * in per-level, per-tenant queues and the GPUs in availability indexes, so one decision costs a
 * few heap operations and a short bucket scan instead of a pass over every stage and GPU.
 */
import { SCHEDULER_DEFAULTS, type SchedulerSettings } from "../config/schema.ts";
import type { FieldIssue } from "../config/errors.ts";
import { buildDag, upwardRank, type Dag } from "./dag.ts";
import { GpuIndex, type GpuState } from "./gpu-state.ts";
import { EntryQueue as Queue } from "./entry-queue.ts";
import { DueQueue } from "./heap.ts";
import { MIB_PER_GIB, type GpuSpec } from "./inventory.ts";
import { planRun } from "./planner.ts";
import type { Decision, Kill, Placement, QueueLevel, RunSpec, StageSpec, SubmitResult, WaitReason, Waiting } from "./types.ts";

export interface TenantShare {
  readonly name: string;
  readonly weight: number;
  /** GPUs the tenant may hold at once; null or absent: no cap. */
  readonly gpuQuota?: number | null;
  /** VRAM the tenant may hold at once, in MiB; null or absent: no cap. */
  readonly vramQuotaMiB?: number | null;
}

export interface SchedulerOptions {
  readonly gpus: readonly GpuSpec[];
  /** Known tenants; when given, runs of other tenants are rejected. */
  readonly tenants?: readonly TenantShare[];
  readonly settings?: Partial<SchedulerSettings>;
  /** Planning ahead for runs that ask for it. */
  readonly plan?: { readonly budget?: number; readonly seed?: number };
  /** Blocked stages examined per round before giving up on backfilling. */
  readonly backfillWindow?: number;
  /** Failed attempts after which a stage (and its run) fails for good. */
  readonly maxAttempts?: number;
}

/** The defaults of runtime/config, under the name this module has always exported. */
export const DEFAULT_SETTINGS: SchedulerSettings = SCHEDULER_DEFAULTS;

const WAITING = 0;
const READY = 1;
const RUNNING = 2;
const DONE = 3;
const FAILED = 4;

// Levels: 0 fresh batch, 1 batch lifted once by aging, 2 interactive (and batch lifted twice).
const BATCH = 0;
const INTERACTIVE = 2;
const LEVELS = 3;
const LEVEL_NAMES: readonly QueueLevel[] = ["batch", "batch-aged", "interactive"];
/** What a GPU search keeps away from: nothing, the node reserved for a gang, or that and the large GPUs reserved for an interactive stage. */
const AVOID_NONE = 0;
const AVOID_NODE = 1;
const AVOID_ALL = 2;
/** Free GPUs with resident models looked at when searching a tenant's queue for a stage that reuses one. */
const AFFINITY_SCAN = 16;

interface TenantState {
  readonly index: number;
  readonly name: string;
  readonly weight: number;
  readonly gpuQuota: number | null;
  readonly vramQuotaMiB: number | null;
  heldGpus: number;
  heldMiB: number;
  /** GPU-seconds of finished and running stages, for reporting. */
  gpuSeconds: number;
  /**
   * Ready stages per level and queue class (the size class of 1-GPU stages; one more class for
   * gangs), each in dispatch order. Split by class so that a round only looks at stages that could
   * get one of the GPUs free now, instead of popping and pushing back those that could not.
   */
  readonly queues: EntryQueue[][];
  /** The same stages per level and model, to find one that reuses a model resident on a free GPU. */
  readonly modelQueues: Map<string, EntryQueue>[];
  blockedRound: number[];
  /** Ready GPU stages per level: a level with none is not looked at. */
  readonly readyAt: number[];
}

interface RunState {
  readonly seq: number;
  readonly spec: RunSpec;
  readonly tenant: TenantState;
  readonly stages: StageState[];
  /** Stages by id, for runs too large to search (null: look through `ids`). */
  readonly byId: Map<string, StageState> | null;
  /** Stage ids in stage order, searched for small runs (one array instead of a map per run). */
  readonly ids: readonly string[];
  readonly original: number;
  level: number;
  /** Submission time shifted earlier by the aging steps of its class: the order inside a level. */
  readonly virtualTime: number;
  promotedAt: number;
  /** Due time of the run's entry in the aging heap (Infinity: none): one entry per run, not per stage. */
  agingDue: number;
  /** Ready stages, in no particular order (swap-removed by position). */
  readonly ready: StageState[];
  /**
   * Per ready stage (same positions): when aging lifts the run next, counted from when the stage
   * was queued at its level (Infinity: not counting). Kept beside the list, not on each stage, so
   * the aging scan reads one array of numbers instead of every stage and its boxed number.
   */
  readonly readyDue: number[];
  remaining: number;
  /**
   * Per stage, its parents not done yet. Kept on the run, not on each stage, so finishing a parent
   * touches its children only when the last one finishes.
   */
  readonly pending: number[];
  failed: boolean;
}

interface StageState {
  readonly index: number;
  readonly run: RunState;
  readonly spec: StageSpec;
  // The spec's fields the hot path reads, copied flat: the specs lie elsewhere in memory, and
  // reaching into one costs a cache miss on every look.
  readonly gpuCount: number;
  readonly vramMiB: number;
  readonly model: string | undefined;
  readonly durationS: number;
  readonly modelLoadS: number;
  readonly modelMiB: number;
  readonly key: number;
  /** Size class of the smallest GPUs that hold it. */
  readonly sizeClass: number;
  /** Its queue within a tenant's level: the size class, or the gang class. */
  readonly queueClass: number;
  parents: readonly StageState[];
  /** Indexes of the stages that need it; their unfinished parents are counted in run.pending. */
  children: readonly number[];
  state: number;
  readyAt: number;
  token: number;
  attempts: number;
  startedAt: number;
  expectedEnd: number;
  gpus: readonly GpuState[];
  lastWait: WaitReason | null;
  /** Its position in run.ready while ready (-1: not there). */
  readyPos: number;
  /** The reason given to stages kept off the node it reserves, made once (a waiting gang reserves every round). */
  reservedFor: WaitReason | null;
}

/** A CPU-only stage waiting for the next round (GPU stages wait in queues that hold no entry objects). */
interface CpuEntry {
  readonly s: StageState;
  readonly token: number;
}

/** Shared empty list for placements that evict nothing (most of them). */
const NONE: readonly never[] = Object.freeze([]);

interface AgingEntry {
  readonly run: RunState;
  readonly due: number;
}


type EntryQueue = Queue<StageState>;

const ACCEPTED: SubmitResult = Object.freeze({ accepted: true });
/** Runs with more stages than this index them by id; smaller ones are searched. */
const BY_ID_MIN = 16;
/** Shared empty lists: most stages have no parents or no children, and no GPUs until placed. */
const NO_STAGES: readonly StageState[] = Object.freeze([]);
const NO_GPUS: readonly GpuState[] = Object.freeze([]);
const NO_INDEXES: readonly number[] = Object.freeze([]);
/** Runs with at most this many stages (and no planning) build their DAG as bit masks in scratch buffers. */
const SMALL_DAG = 16;

const idOf = (s: StageSpec): string => s.id;
const zero = (): number => 0;
const nothing = (): null => null;

function stageOf(run: RunState, id: string): StageState | undefined {
  if (run.byId !== null) return run.byId.get(id);
  const i = run.ids.indexOf(id);
  return i < 0 ? undefined : run.stages[i];
}

function removeReady(s: StageState): void {
  const list = s.run.ready;
  const dues = s.run.readyDue;
  const last = list.pop()!;
  const lastDue = dues.pop()!;
  if (last !== s) {
    list[s.readyPos] = last;
    dues[s.readyPos] = lastDue;
    last.readyPos = s.readyPos;
  }
  s.readyPos = -1;
}

/** Queues a stage with its current token and `due`. */
function push(q: EntryQueue, s: StageState, due: number): void {
  q.push(s, s.run.virtualTime, s.run.seq, s.key, s.index, s.token, due);
}

export class Scheduler {
  readonly settings: SchedulerSettings;
  private readonly index: GpuIndex;
  private readonly tenants = new Map<string, TenantState>();
  private readonly tenantList: TenantState[] = [];
  private readonly closedTenants: boolean;
  private readonly runs = new Map<string, RunState>();
  /** When runs are due to be lifted by aging; due times are pushed mostly in order, so a FIFO serves most. */
  private readonly aging = new DueQueue<AgingEntry>();
  private readonly cpuReady: CpuEntry[] = [];
  private readonly runningBatch = new Set<StageState>();
  /**
   * Per GPU count k, the most VRAM (MiB) a stage may ask for on each of k GPUs of one node (the
   * k-th largest usable GPU of the best node); a stage of more GPUs than any node has fits nowhere.
   */
  private readonly fitMiB: number[] = [0];
  /** Children lists of small runs' stages by bit mask, shared: they are only read, and most runs repeat a few shapes. */
  private readonly childLists = new Map<number, readonly number[]>();
  private readonly backfillWindow: number;
  private readonly maxAttempts: number;
  private readonly planOptions: { readonly budget?: number; readonly seed?: number };
  /** Ready GPU stages per queue level and size class, to keep scarce large GPUs for stages that need them. */
  private readonly readyByClass: number[][];
  /** Ready GPU stages per queue level, all tenants. */
  private readonly readyAtLevel: number[] = new Array<number>(LEVELS).fill(0);
  /** Most free slots on one node, as of the start of the round (gang stages need several). */
  private roundMaxNodeFree = 0;
  /** Why the last GPU search came back empty, when not for lack of room. */
  private refusal: WaitReason | null = null;
  /** This round, lower-level stages may not take GPUs this large (kept for a waiting interactive-level stage). */
  private reservedMiB = Infinity;
  /**
   * This round, the node kept for a waiting interactive-level gang (-1: none): no stage examined
   * after the gang takes a GPU there, whatever its level, or gangs at the top level would starve
   * behind the 1-GPU stages that take each GPU as it frees.
   */
  private reservedNode = -1;
  private reservedReason: WaitReason | null = null;
  /**
   * Per-round scratch, kept to spare the allocations: the stages examined and left waiting, with
   * their token and due when taken, and whether they were taken out of turn (then in no queue).
   * Filled by index up to a count: emptying an array by its length gives its storage back.
   */
  private readonly blocked: StageState[] = [];
  private readonly blockedToken: number[] = [];
  private readonly blockedDue: number[] = [];
  private readonly blockedFresh: boolean[] = [];
  /** What affinityPick took besides the stage: its due (its token is the stage's new one). */
  private pickedDue = 0;
  /** Per GPU count, the least VRAM a stage asked for and found no room for this round (Infinity: none). */
  private readonly failMiB: number[];
  private readonly eligible: boolean[] = [];
  /** Per tenant, its weighted share while pickTenant looks at a level (NaN: not a candidate). */
  private readonly shares: number[] = [];
  /**
   * No-fit reasons computed this round, by GPUs and VRAM; cleared whenever a placement changes the
   * GPUs. Few at a time, so parallel lists searched in order and emptied by a count: Map.clear()
   * allocated a new table at every placement.
   */
  private readonly noFitKeys: number[] = [];
  private readonly noFitReasons: WaitReason[] = [];
  private noFitCount = 0;
  /** What pickTenant chose besides the tenant (kept in fields to spare an allocation per pick). */
  private pickedLevel = 0;
  private pickedShare = 0;
  private pickedQueue: EntryQueue | null = null;
  /** bestSingle's choice so far. */
  private bestGpu: GpuState | null = null;
  private bestScore = -Infinity;
  /** submit's scratch for small runs (see smallDag): per stage, the bit mask of its children, its parent count, and more. */
  private readonly childMask = new Int32Array(SMALL_DAG);
  private readonly parentCount = new Int32Array(SMALL_DAG);
  private readonly pendingScratch = new Int32Array(SMALL_DAG);
  private readonly orderScratch = new Int32Array(SMALL_DAG);
  private readonly rankScratch = new Float64Array(SMALL_DAG);
  private runSeq = 0;
  private round = 0;
  private placementsMade = 0;

  constructor(options: SchedulerOptions) {
    if (options.gpus.length === 0) throw new Error("a scheduler needs at least one GPU");
    this.settings = { ...DEFAULT_SETTINGS, ...options.settings };
    this.index = new GpuIndex(options.gpus, this.settings.headroomMiB);
    this.closedTenants = options.tenants !== undefined;
    for (const t of options.tenants ?? []) this.addTenant(t);
    this.backfillWindow = options.backfillWindow ?? 256;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.planOptions = options.plan ?? {};
    for (const list of this.index.nodeGpus) {
      const usable = list.map((g) => g.usableMiB).sort((a, b) => b - a);
      for (let k = 1; k <= usable.length; k++) this.fitMiB[k] = Math.max(this.fitMiB[k] ?? 0, usable[k - 1]!);
    }
    this.failMiB = new Array<number>(Math.max(...this.index.nodeGpus.map((n) => n.length)) + 1).fill(Infinity);
    this.readyByClass = Array.from({ length: LEVELS }, () => new Array<number>(this.index.sizeClasses.length + 1).fill(0));
  }

  /** Counts ready 1-GPU stages (gangs wait for whole nodes, which the node counts track). */
  private countReady(s: StageState, level: number, delta: number): void {
    const gpus = s.gpuCount;
    if (gpus === 0) return;
    if (gpus === 1) this.readyByClass[level]![s.sizeClass]! += delta;
    s.run.tenant.readyAt[level]! += delta;
    this.readyAtLevel[level]! += delta;
  }

  get gpuCount(): number {
    return this.index.gpus.length;
  }

  get placements(): number {
    return this.placementsMade;
  }

  gpuId(i: number): string {
    return this.index.gpus[i]!.spec.id;
  }

  /** Models resident on a GPU, least recently used first. */
  residentModels(gpu: number): string[] {
    return [...this.index.gpus[gpu]!.resident.values()].sort((a, b) => a.lastUse - b.lastUse).map((m) => m.name);
  }

  tenantUsage(): { name: string; weight: number; heldGpus: number; heldMiB: number }[] {
    return this.tenantList.map((t) => ({ name: t.name, weight: t.weight, heldGpus: t.heldGpus, heldMiB: t.heldMiB }));
  }

  private addTenant(t: TenantShare): TenantState {
    const state: TenantState = {
      index: this.tenantList.length,
      name: t.name,
      weight: t.weight > 0 ? t.weight : 1,
      gpuQuota: t.gpuQuota ?? null,
      vramQuotaMiB: t.vramQuotaMiB ?? null,
      heldGpus: 0,
      heldMiB: 0,
      gpuSeconds: 0,
      queues: Array.from({ length: LEVELS }, (_, level) => Array.from({ length: this.index.sizeClasses.length + 1 }, () => new Queue<StageState>(level === BATCH))),
      modelQueues: Array.from({ length: LEVELS }, () => new Map<string, EntryQueue>()),
      blockedRound: new Array<number>(LEVELS).fill(-1),
      readyAt: new Array<number>(LEVELS).fill(0),
    };
    this.tenants.set(t.name, state);
    this.tenantList.push(state);
    return state;
  }

  /** Accepts a run, or rejects it with the field at fault; a stage no GPU could ever hold is rejected here, never queued. */
  submit(run: RunSpec, now: number): SubmitResult {
    const issue = this.validate(run);
    if (issue !== null) return { accepted: false, field: issue.field, message: issue.message, ...(issue.stageId ? { stageId: issue.stageId } : {}) };
    const specs = run.stages;
    const n = specs.length;
    // Small runs without planning (most) get their DAG and ranks in the scratch buffers; the rest
    // through buildDag. Either way a malformed DAG is reported by buildDag, for its messages.
    const small = n <= SMALL_DAG && !(run.planAhead && n > 1);
    let dag: Dag | null = null;
    if (!small || !this.smallDag(specs)) {
      const built = buildDag(specs);
      if (Array.isArray(built)) return { accepted: false, field: built[0]!.field, message: built[0]!.message };
      dag = built;
    }
    let tenant = this.tenants.get(run.tenant);
    if (tenant === undefined) tenant = this.addTenant({ name: run.tenant, weight: 1 });
    const keys = dag === null ? this.rankScratch : this.stageKeys(run, dag);
    const level = run.priority === "interactive" ? INTERACTIVE : BATCH;
    // Made by map, which sizes them exactly (push would reserve room for 17), with no closure per run.
    const ids = specs.map(idOf);
    const pending = specs.map(zero);
    for (let i = 0; i < n; i++) pending[i] = dag === null ? this.parentCount[i]! : dag.parents[i]!.length;
    const state: RunState = {
      seq: this.runSeq++,
      spec: run,
      tenant,
      // Filled below; made by map for the same reason as ids.
      stages: specs.map(nothing) as unknown as StageState[],
      byId: n > BY_ID_MIN ? new Map() : null,
      ids,
      original: level,
      level,
      virtualTime: now - (level === INTERACTIVE ? 2 * this.settings.agingSeconds : 0),
      promotedAt: now,
      agingDue: Infinity,
      ready: [],
      readyDue: [],
      remaining: n,
      pending,
      failed: false,
    };
    const stages = state.stages;
    const gangClass = this.index.sizeClasses.length;
    for (let i = 0; i < n; i++) {
      const spec = specs[i]!;
      const sizeClass = this.index.classFor(spec.vramMiB);
      const s: StageState = {
        index: i,
        run: state,
        spec,
        gpuCount: spec.gpus,
        vramMiB: spec.vramMiB,
        model: spec.model,
        durationS: spec.durationS,
        modelLoadS: spec.modelLoadS,
        modelMiB: Math.min(spec.vramMiB, spec.modelMiB ?? spec.vramMiB),
        key: keys[i]!,
        sizeClass,
        queueClass: spec.gpus > 1 ? gangClass : sizeClass,
        parents: NO_STAGES,
        children: NO_INDEXES,
        state: WAITING,
        readyAt: now,
        token: 0,
        attempts: 0,
        startedAt: 0,
        expectedEnd: 0,
        gpus: NO_GPUS,
        lastWait: null,
        readyPos: -1,
        reservedFor: null,
      };
      stages[i] = s;
      state.byId?.set(spec.id, s);
    }
    if (dag === null) this.linkSmall(stages);
    else {
      for (let i = 0; i < n; i++) {
        const s = stages[i]!;
        const parents = dag.parents[i]!;
        const children = dag.children[i]!;
        if (parents.length > 0) s.parents = parents.map((p) => stages[p]!);
        if (children.length > 0) s.children = children;
      }
    }
    this.runs.set(run.id, state);
    for (let i = 0; i < n; i++) if (pending[i] === 0) this.makeReady(stages[i]!, now);
    return ACCEPTED;
  }

  /**
   * The DAG of a run of at most SMALL_DAG stages, as bit masks in the scratch buffers: childMask,
   * parentCount, and the upward rank in rankScratch (the same sums as upwardRank, in
   * the same topological order). False when the DAG is malformed (duplicate or unknown ids, a stage
   * that needs itself, a cycle): buildDag then says how.
   */
  private smallDag(specs: readonly StageSpec[]): boolean {
    const n = specs.length;
    const childMask = this.childMask;
    const parentCount = this.parentCount;
    for (let i = 0; i < n; i++) {
      const id = specs[i]!.id;
      for (let k = 0; k < i; k++) if (specs[k]!.id === id) return false;
      childMask[i] = 0;
    }
    for (let i = 0; i < n; i++) {
      const needs = specs[i]!.needs;
      let mask = 0;
      let count = 0;
      for (let j = 0; j < needs.length; j++) {
        const need = needs[j]!;
        let p = 0;
        while (p < n && specs[p]!.id !== need) p++;
        if (p === n || p === i) return false;
        const bit = 1 << p;
        if ((mask & bit) === 0) {
          mask |= bit;
          count++;
          childMask[p]! |= 1 << i;
        }
      }
      parentCount[i] = count;
    }
    // Kahn's algorithm, FIFO by index, as buildDag: the same order, so the same ranks.
    const order = this.orderScratch;
    const left = this.pendingScratch;
    let len = 0;
    for (let i = 0; i < n; i++) {
      left[i] = parentCount[i]!;
      if (left[i] === 0) order[len++] = i;
    }
    for (let k = 0; k < len; k++) {
      let m = childMask[order[k]!]!;
      while (m !== 0) {
        const c = 31 - Math.clz32(m & -m);
        m &= m - 1;
        if (--left[c]! === 0) order[len++] = c;
      }
    }
    if (len < n) return false;
    const rank = this.rankScratch;
    for (let k = n - 1; k >= 0; k--) {
      const i = order[k]!;
      let best = 0;
      let m = childMask[i]!;
      while (m !== 0) {
        const c = 31 - Math.clz32(m & -m);
        m &= m - 1;
        if (rank[c]! > best) best = rank[c]!;
      }
      rank[i] = specs[i]!.durationS + specs[i]!.modelLoadS + best;
    }
    return true;
  }

  /** Links a small run's stages from the masks smallDag left: parents in the order of needs, children by index (as buildDag). */
  private linkSmall(stages: StageState[]): void {
    const n = stages.length;
    for (let i = 0; i < n; i++) {
      const s = stages[i]!;
      if (this.parentCount[i]! > 0) {
        const needs = s.spec.needs;
        const parents: StageState[] = [];
        let seen = 0;
        for (let j = 0; j < needs.length; j++) {
          let p = 0;
          while (stages[p]!.spec.id !== needs[j]) p++;
          if ((seen & (1 << p)) === 0) {
            seen |= 1 << p;
            parents.push(stages[p]!);
          }
        }
        s.parents = parents;
      }
      const mask = this.childMask[i]!;
      if (mask !== 0) {
        let children = this.childLists.get(mask);
        if (children === undefined) {
          const list: number[] = [];
          for (let m = mask; m !== 0; m &= m - 1) list.push(31 - Math.clz32(m & -m));
          children = Object.freeze(list);
          this.childLists.set(mask, children);
        }
        s.children = children;
      }
    }
  }

  private stageKeys(run: RunSpec, dag: Dag): ArrayLike<number> {
    const cost = run.stages.map((s) => s.durationS + s.modelLoadS);
    if (run.planAhead && run.stages.length > 1) {
      const widest = run.stages.reduce((m, s) => Math.max(m, s.vramMiB), 0);
      const machines = this.index.gpus.filter((g) => g.usableMiB >= widest).length || this.index.gpus.length;
      return planRun(dag, cost, machines, { budget: this.planOptions.budget, seed: this.planOptions.seed }).priority;
    }
    return upwardRank(dag, cost);
  }

  /**
   * The first issue with the run, the DAG aside (null: none); submit reports only the first, so the
   * checks stop there.
   */
  private validate(run: RunSpec): (FieldIssue & { stageId?: string }) | null {
    if (typeof run.id !== "string" || run.id === "") return { field: "id", message: "a run needs a non-empty id" };
    if (this.runs.has(run.id)) return { field: "id", message: `run '${run.id}' was already submitted: give each run its own id` };
    if (this.closedTenants && !this.tenants.has(run.tenant)) {
      return { field: "tenant", message: `unknown tenant '${run.tenant}': declare it under tenants (known: ${[...this.tenants.keys()].join(", ")})` };
    }
    if (run.priority !== "interactive" && run.priority !== "batch") return { field: "priority", message: `must be 'interactive' or 'batch' (got ${JSON.stringify(run.priority)})` };
    const stages = run.stages;
    if (!Array.isArray(stages) || stages.length === 0) return { field: "stages", message: "a run needs at least one stage" };
    const tenant = this.tenants.get(run.tenant);
    const gpuQuota = tenant?.gpuQuota ?? null;
    const vramQuota = tenant?.vramQuotaMiB ?? null;
    for (let i = 0; i < stages.length; i++) {
      const s = stages[i]!;
      const gpus = s.gpus;
      const vramMiB = s.vramMiB;
      if (!Number.isInteger(gpus) || gpus < 0) return stageIssue(i, s, "gpus", `must be a whole number of GPUs, 0 or more (got ${gpus})`);
      if (!Number.isFinite(vramMiB) || vramMiB < 0) return stageIssue(i, s, "vramMiB", `must be a non-negative number of MiB (got ${vramMiB})`);
      if (!Number.isFinite(s.durationS) || s.durationS < 0) return stageIssue(i, s, "durationS", `must be a non-negative number of seconds (got ${s.durationS})`);
      if (!Number.isFinite(s.modelLoadS) || s.modelLoadS < 0) return stageIssue(i, s, "modelLoadS", `must be a non-negative number of seconds (got ${s.modelLoadS})`);
      if (gpus > 0 && !this.fitsSomewhere(gpus, vramMiB)) {
        const largest = Math.round(this.index.largestUsableMiB / MIB_PER_GIB);
        return stageIssue(
          i,
          s,
          "resources",
          gpus === 1
            ? `stage '${s.id}' needs ${fmtGiB(vramMiB)} GiB but the largest GPU offers ${largest} GiB after ${fmtGiB(this.settings.headroomMiB)} GiB headroom: lower its VRAM or add larger GPUs`
            : `stage '${s.id}' needs ${gpus} GPUs with ${fmtGiB(vramMiB)} GiB each on one node, and no node has that many: lower gpus/VRAM or add larger nodes`,
        );
      }
      if (gpuQuota !== null && gpus > gpuQuota) return stageIssue(i, s, "gpus", `needs ${gpus} GPUs but tenant '${tenant!.name}' may hold ${gpuQuota}: raise its gpuQuota`);
      if (vramQuota !== null && gpus * vramMiB > vramQuota) return stageIssue(i, s, "vramMiB", `needs ${gpus * vramMiB} MiB but tenant '${tenant!.name}' may hold ${vramQuota} MiB: raise its vramQuotaMiB`);
    }
    return null;
  }

  private fitsSomewhere(gpus: number, vramMiB: number): boolean {
    return gpus < this.fitMiB.length && vramMiB <= this.fitMiB[gpus]!;
  }

  private makeReady(s: StageState, now: number): void {
    s.state = READY;
    s.readyAt = now;
    s.lastWait = null;
    if (s.readyPos < 0) {
      s.readyPos = s.run.ready.length;
      s.run.ready.push(s);
      // Set by enqueue below.
      s.run.readyDue.push(Infinity);
    }
    this.countReady(s, s.run.level, 1);
    this.enqueue(s, s.run.level, now);
  }

  /** Queues a ready stage at a level; `due` (when aging lifts it next) carries over when a blocked stage goes back. */
  private enqueue(s: StageState, level: number, now: number, due = now + this.settings.agingSeconds): void {
    s.token++;
    // Only ready stages are queued, so the stage has its place in run.ready.
    s.run.readyDue[s.readyPos] = due;
    if (s.gpuCount === 0) {
      this.cpuReady.push({ s, token: s.token });
      return;
    }
    const tenant = s.run.tenant;
    push(tenant.queues[level]![s.queueClass]!, s, due);
    const model = s.model;
    if (model !== undefined && s.gpuCount === 1) {
      let q = tenant.modelQueues[level]!.get(model);
      if (q === undefined) {
        q = new Queue<StageState>(level === BATCH);
        tenant.modelQueues[level]!.set(model, q);
      }
      push(q, s, due);
    }
    const run = s.run;
    if (level < INTERACTIVE && due < run.agingDue) {
      run.agingDue = due;
      this.aging.push({ run, due });
    }
  }

  /**
   * A run whose stage has waited `agingSeconds` at its level is lifted one level, all its ready
   * stages together so the run keeps its own order; batch work reaches the interactive level after
   * two lifts, so nothing starves while interactive work keeps its lead over fresh batch work.
   */
  private promoteAged(now: number): void {
    for (;;) {
      const top = this.aging.peek();
      if (top === undefined || top.due > now) return;
      this.aging.pop();
      const run = top.run;
      // An entry superseded by an earlier one, or of a run already at the top, is stale.
      if (top.due !== run.agingDue) continue;
      run.agingDue = Infinity;
      if (run.level >= INTERACTIVE || run.failed) continue;
      const recent = now - run.promotedAt < this.settings.agingSeconds && run.level > run.original;
      let next = Infinity;
      let due = false;
      const ready = run.ready;
      const dues = run.readyDue;
      for (let i = 0; i < dues.length; i++) {
        const d = dues[i]!;
        if (d <= now) {
          due = true;
          // Lifted too recently: the stage stops counting until it is queued again.
          if (recent) dues[i] = Infinity;
        } else if (d < next) next = d;
      }
      if (!due || recent) {
        if (next < Infinity) {
          run.agingDue = next;
          this.aging.push({ run, due: next });
        }
        continue;
      }
      for (let i = 0; i < ready.length; i++) this.countReady(ready[i]!, run.level, -1);
      run.level++;
      run.promotedAt = now;
      for (let i = 0; i < ready.length; i++) {
        this.countReady(ready[i]!, run.level, 1);
        this.enqueue(ready[i]!, run.level, now);
      }
    }
  }

  /** Places as many ready stages as fit now; returns the placements, kills and reasons for stages examined but left waiting. */
  schedule(now: number): Decision[] {
    this.round++;
    this.promoteAged(now);
    const decisions: Decision[] = [];
    if (this.cpuReady.length > 0) {
      for (const entry of this.cpuReady.splice(0)) {
        if (entry.token !== entry.s.token || entry.s.state !== READY) continue;
        decisions.push(this.commit(entry.s, NO_GPUS, NONE, now, entry.s.run.level, 0, 0));
      }
    }
    if (this.index.freeSlots === 0 && this.settings.preemption !== "kill") return decisions;
    const blocked = this.blocked;
    const blockedToken = this.blockedToken;
    const blockedDue = this.blockedDue;
    const blockedFresh = this.blockedFresh;
    let nBlocked = 0;
    const failMiB = this.failMiB;
    failMiB.fill(Infinity);
    this.noFitCount = 0;
    this.roundMaxNodeFree = this.index.maxNodeFree();
    let examined = 0;
    let reserving = false;
    this.reservedMiB = Infinity;
    this.reservedNode = -1;
    this.reservedReason = null;
    // Few free GPUs need few candidates: the window grows with them, up to backfillWindow.
    const window = Math.min(this.backfillWindow, 16 + 4 * this.index.freeSlots);
    while (examined < window) {
      // GPUs free only on the node kept for a gang are no use to the stages after it.
      const usable = this.index.freeSlots - (this.reservedNode >= 0 ? this.index.nodeFreeSlots[this.reservedNode]! : 0);
      if (usable === 0 && (this.settings.preemption !== "kill" || examined > 0)) break;
      const tenant = this.pickTenant();
      if (tenant === null) break;
      const level = this.pickedLevel;
      const share = this.pickedShare;
      const queue = this.pickedQueue!;
      let s = this.affinityPick(tenant, level, queue);
      const fresh = s !== null;
      let due = this.pickedDue;
      const token = fresh ? s!.token : queue.topToken();
      if (s === null) {
        due = queue.topDue();
        s = queue.pop()!;
      }
      const gpus = s.gpuCount;
      const quota = this.quotaReason(tenant, s);
      if (quota !== null) {
        tenant.blockedRound[level] = this.round;
        decisions.push(this.wait(s, quota));
        blocked[nBlocked] = s;
        blockedToken[nBlocked] = token;
        blockedDue[nBlocked] = due;
        blockedFresh[nBlocked] = fresh;
        nBlocked++;
        examined++;
        continue;
      }
      const knownFail = failMiB[gpus]!;
      let found: readonly GpuState[] | null = null;
      this.refusal = null;
      if (s.vramMiB < knownFail) {
        found = this.findGpus(s, level < INTERACTIVE && reserving ? AVOID_ALL : AVOID_NODE, now);
      }
      if (found === null && level === INTERACTIVE && s.run.original === INTERACTIVE && this.settings.preemption === "kill" && gpus === 1) {
        const victim = this.killFor(s, now, decisions);
        if (victim) found = this.findGpus(s, AVOID_NONE, now);
      }
      if (found === null) {
        const refusal = this.refusal;
        if (refusal === null && s.vramMiB < knownFail) failMiB[gpus] = s.vramMiB;
        decisions.push(this.wait(s, refusal ?? this.noFitReason(s)));
        if (refusal === null && level === INTERACTIVE && this.settings.preemption !== "never") {
          reserving = true;
          this.reserveFor(s);
        }
        blocked[nBlocked] = s;
        blockedToken[nBlocked] = token;
        blockedDue[nBlocked] = due;
        blockedFresh[nBlocked] = fresh;
        nBlocked++;
        examined++;
        continue;
      }
      decisions.push(this.commit(s, found, this.evictionsFor(s, found), now, level, share, found.length));
    }
    for (let i = 0; i < nBlocked; i++) {
      const s = blocked[i]!;
      if (blockedToken[i] !== s.token || s.state !== READY) continue;
      // Stages taken out of turn for affinity got a fresh token; the others are still live in the model and aging queues.
      if (blockedFresh[i]) this.enqueue(s, s.run.level, now, blockedDue[i]);
      else s.run.tenant.queues[s.run.level]![s.queueClass]!.push(s, s.run.virtualTime, s.run.seq, s.key, s.index, s.token, blockedDue[i]!);
    }
    return decisions;
  }

  /** Drops the stale slots at the head of a queue. */
  private dropStale(q: EntryQueue): void {
    // Every change of a stage's state or level gives it a new token, so the token alone says whether a slot is current.
    while (q.size > 0 && q.peek()!.token !== q.topToken()) q.pop();
  }

  /**
   * When the tenant's next stage would have to load its model anyway, a stage of the same tenant
   * and level whose model sits on a free GPU goes first: the load is saved and the order inside a
   * tenant's level is all that bends (aging still lifts whatever waits).
   */
  private affinityPick(tenant: TenantState, level: number, queue: EntryQueue): StageState | null {
    if (this.index.freeWithModels.size === 0) return null;
    const head = queue.peek()!;
    const model = head.model;
    if (model === undefined || head.gpuCount !== 1) return null;
    const holders = this.index.gpusWithModel(model);
    if (holders !== undefined) for (let l = holders.first; l !== null; l = l.next) if (l.gpu.availableMiB >= head.vramMiB) return null;
    const queues = tenant.modelQueues[level]!;
    const refusal = this.refusal;
    let scanned = 0;
    for (let l = this.index.freeWithModels.first; l !== null; l = l.next) {
      if (++scanned > AFFINITY_SCAN) break;
      const g = l.gpu;
      const resident = g.residentList;
      for (let i = 0; i < resident.length; i++) {
        const q = queues.get(resident[i]!.name);
        if (q === undefined) continue;
        this.dropStale(q);
        const top = q.peek();
        if (top === undefined || !this.fits(g, top, AVOID_NONE)) continue;
        this.pickedDue = q.topDue();
        q.pop();
        this.refusal = refusal;
        // A fresh token leaves its slot in the main queue stale.
        top.token++;
        return top;
      }
    }
    this.refusal = refusal;
    return null;
  }

  /**
   * The (tenant, level, queue) to serve next: highest level first, then lowest weighted dominant
   * share, then the tenant's first stage among the classes that could get a GPU free now.
   */
  private pickTenant(): TenantState | null {
    const classes = this.index.sizeClasses.length;
    const eligible = this.eligible;
    for (let level = INTERACTIVE; level >= BATCH; level--) {
      if (this.readyAtLevel[level] === 0) continue;
      // Under policy `kill` an interactive stage may take a GPU from batch work, so every class is looked at.
      const mayKill = level === INTERACTIVE && this.settings.preemption === "kill";
      for (let c = 0; c < classes; c++) eligible[c] = mayKill || this.classEligible(level, c);
      // When no node has two free slots, gangs are looked at only at the interactive level and only
      // until one has reserved a node (no starvation): the others could not start this round anyway.
      eligible[classes] = this.roundMaxNodeFree >= 2 || (level === INTERACTIVE && this.reservedNode < 0);
      // Tenants are tried lowest share first (ties: declaration order) and the first with a stage
      // that could start wins, so only that tenant's queues are looked at, not every tenant's.
      const shares = this.shares;
      const tenants = this.tenantList;
      let candidates = 0;
      for (let i = 0; i < tenants.length; i++) {
        const t = tenants[i]!;
        if (t.readyAt[level] === 0 || t.blockedRound[level] === this.round) shares[t.index] = NaN;
        else {
          shares[t.index] = this.shareOf(t);
          candidates++;
        }
      }
      for (; candidates > 0; candidates--) {
        let t: TenantState | null = null;
        let share = Infinity;
        for (let i = 0; i < tenants.length; i++) {
          const sh = shares[i]!;
          if (sh < share || (t === null && sh === Infinity)) {
            t = tenants[i]!;
            share = sh;
          }
        }
        if (t === null) break;
        shares[t.index] = NaN;
        let headQueue: EntryQueue | null = null;
        const queues = t.queues[level]!;
        for (let c = 0; c <= classes; c++) {
          if (!eligible[c]) continue;
          const q = queues[c]!;
          this.dropStale(q);
          const top = q.peek();
          // A queue whose first stage is known not to fit this round is left for the next one.
          if (top !== undefined && (headQueue === null || q.topBefore(headQueue)) && !this.knownNotToFit(top)) headQueue = q;
        }
        if (headQueue === null) continue;
        this.pickedLevel = level;
        this.pickedShare = share;
        this.pickedQueue = headQueue;
        return t;
      }
    }
    return null;
  }

  /**
   * Whether a stage of the same GPU count and no more VRAM already found no room this round (the
   * GPUs only fill up during a round). Under policy `kill` a 1-GPU stage may still take a batch
   * stage's GPU, so it is always looked at.
   */
  private knownNotToFit(s: StageState): boolean {
    return s.vramMiB >= this.failMiB[s.gpuCount]! && !(s.gpuCount === 1 && this.settings.preemption === "kill");
  }

  /**
   * Whether 1-GPU stages of a size class can get a GPU now: one of their own class is free, or more
   * larger GPUs are free than stages at this level or above that need them.
   */
  private classEligible(level: number, sizeClass: number): boolean {
    return this.index.freeByClass[sizeClass]! > 0 || this.largerSpare(level, sizeClass) > 0;
  }

  /** Dominant-resource share over GPUs and VRAM held, divided by the tenant's weight. */
  private shareOf(t: TenantState): number {
    const g = t.heldGpus / this.index.gpus.length;
    const v = t.heldMiB / this.index.totalMiB;
    return (g > v ? g : v) / t.weight;
  }

  private quotaReason(t: TenantState, s: StageState): WaitReason | null {
    const gpus = s.gpuCount;
    if (t.gpuQuota !== null && t.heldGpus + gpus > t.gpuQuota) return { code: "quota", resource: "gpus", held: t.heldGpus, requested: gpus, quota: t.gpuQuota };
    const mib = gpus * s.vramMiB;
    if (t.vramQuotaMiB !== null && t.heldMiB + mib > t.vramQuotaMiB) return { code: "quota", resource: "vram", held: t.heldMiB, requested: mib, quota: t.vramQuotaMiB };
    return null;
  }

  /** Best GPUs for a stage now, or null. Prefers a resident model, then no eviction, then input locality, then the tightest fit. */
  private findGpus(s: StageState, avoid: number, now: number): readonly GpuState[] | null {
    if (s.gpuCount === 1) {
      const best = this.bestSingle(s, avoid);
      if (best === null) return null;
      return this.worthWaitingForModel(s, best, now) ? null : best.asList;
    }
    return this.bestGang(s, avoid);
  }

  private fits(g: GpuState, s: StageState, avoid: number): boolean {
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
  private largerSpare(level: number, sizeClass: number): number {
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
  private evictionsFor(s: StageState, gpus: readonly GpuState[]): readonly { gpu: GpuState; model: string }[] {
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

  private commit(s: StageState, gpus: readonly GpuState[], evictions: readonly { gpu: GpuState; model: string }[], now: number, level: number, share: number, candidates: number): Placement {
    const run = s.run;
    const tenant = run.tenant;
    this.noFitCount = 0;
    const availableMiB = gpus.length === 1 ? [gpus[0]!.availableMiB] : gpus.map((g) => g.availableMiB);
    const evicted = evictions.length === 0 ? NONE : evictions.map((e) => ({ gpu: e.gpu.spec.id, model: e.model, mib: e.gpu.resident.get(e.model)!.mib }));
    for (let i = 0; i < evictions.length; i++) this.index.evict(evictions[i]!.gpu, evictions[i]!.model);
    const model = s.model;
    let residentEverywhere = model !== undefined && gpus.length > 0;
    let locality: "gpu" | "node" | "none" = "none";
    let loads = false;
    const parents = s.parents;
    for (let k = 0; k < gpus.length; k++) {
      const g = gpus[k]!;
      for (let i = 0; i < parents.length; i++) {
        const pgs = parents[i]!.gpus;
        for (let j = 0; j < pgs.length; j++) {
          const pg = pgs[j]!;
          if (pg === g) locality = "gpu";
          else if (pg.node === g.node && locality === "none") locality = "node";
        }
      }
      if (model !== undefined) {
        const m = g.resident.get(model);
        if (m === undefined) {
          residentEverywhere = false;
          loads = true;
          this.index.addResident(g, model, s.modelMiB, now);
        } else {
          if (m.inUse === 0) g.idleResidentMiB -= m.mib;
          m.inUse++;
          m.lastUse = now;
        }
      }
      g.runningMiB += s.vramMiB;
      this.index.takeSlot(g);
      this.index.rebucket(g);
    }
    s.expectedEnd = now + s.durationS + (loads ? s.modelLoadS : 0);
    for (let k = 0; k < gpus.length; k++) gpus[k]!.addEnd(s.expectedEnd);
    tenant.heldGpus += gpus.length;
    tenant.heldMiB += gpus.length * s.vramMiB;
    s.state = RUNNING;
    s.token++;
    s.startedAt = now;
    s.gpus = gpus;
    s.lastWait = null;
    removeReady(s);
    this.countReady(s, run.level, -1);
    if (run.original === BATCH && gpus.length > 0 && this.settings.preemption === "kill") this.runningBatch.add(s);
    this.placementsMade++;
    return {
      kind: "placed",
      runId: run.spec.id,
      stageId: s.spec.id,
      tenant: tenant.name,
      gpuIds: gpus.length === 1 ? gpus[0]!.idList : gpus.map((g) => g.spec.id),
      gpus: gpus.length === 1 ? gpus[0]!.indexList : gpus.map((g) => g.index),
      evict: evictions.length === 0 ? NONE : evictions.map((e) => ({ gpu: e.gpu.index, model: e.model })),
      reason: {
        needMiB: s.vramMiB,
        availableMiB,
        headroomMiB: this.settings.headroomMiB,
        residentModel: residentEverywhere,
        modelLoadS: residentEverywhere ? 0 : model === undefined ? 0 : s.modelLoadS,
        inputLocality: locality,
        evicted,
        level: LEVEL_NAMES[level]!,
        aged: level > run.original,
        tenantShare: share,
        candidates,
      },
    };
  }

  private release(s: StageState, now: number): void {
    this.noFitCount = 0;
    const model = s.model;
    const gpus = s.gpus;
    for (let k = 0; k < gpus.length; k++) {
      const g = gpus[k]!;
      g.runningMiB -= s.vramMiB;
      g.removeEnd(s.expectedEnd);
      if (model !== undefined) {
        const m = g.resident.get(model);
        if (m !== undefined && --m.inUse === 0) {
          g.idleResidentMiB += m.mib;
          m.lastUse = now;
        }
      }
      this.index.releaseSlot(g);
      this.index.rebucket(g);
    }
    const tenant = s.run.tenant;
    tenant.heldGpus -= s.gpus.length;
    tenant.heldMiB -= s.gpus.length * s.vramMiB;
    tenant.gpuSeconds += s.gpus.length * (now - s.startedAt);
    if (this.runningBatch.size > 0) this.runningBatch.delete(s);
  }

  /**
   * Records the end of a stage's attempt. A success readies its dependents; a failure queues the
   * stage again until maxAttempts, then fails the run. Returns the run's state afterwards.
   */
  finished(runId: string, stageId: string, now: number, outcome: "succeeded" | "failed"): "running" | "succeeded" | "failed" {
    const run = this.runs.get(runId);
    const s = run === undefined ? undefined : stageOf(run, stageId);
    if (run === undefined || s === undefined || s.state !== RUNNING) throw new Error(`stage '${stageId}' of run '${runId}' is not running`);
    this.release(s, now);
    if (run.failed) {
      s.state = FAILED;
      this.forgetIfIdle(run);
      return "failed";
    }
    if (outcome === "failed") {
      s.attempts++;
      if (s.attempts >= this.maxAttempts) {
        s.state = FAILED;
        this.abandon(run);
        return "failed";
      }
      this.makeReady(s, now);
      return "running";
    }
    s.state = DONE;
    run.remaining--;
    const children = s.children;
    const pending = run.pending;
    for (let i = 0; i < children.length; i++) {
      const c = children[i]!;
      if (--pending[c]! === 0) this.makeReady(run.stages[c]!, now);
    }
    if (run.remaining === 0) {
      this.runs.delete(runId);
      return "succeeded";
    }
    return "running";
  }

  /**
   * Cancels a run: its queued and waiting stages leave the queues and are never placed; a stage of
   * it still running ends through finished() as usual (which then reports the run failed). Returns
   * how many of its stages still run: 0 means the scheduler has forgotten the run (or never knew it).
   */
  cancel(runId: string): number {
    const run = this.runs.get(runId);
    if (run === undefined) return 0;
    this.abandon(run);
    let running = 0;
    for (const s of run.stages) if (s.state === RUNNING) running++;
    return running;
  }

  /** Fails a run for good: no stage of it is placed again. */
  private abandon(run: RunState): void {
    run.failed = true;
    for (const other of run.stages) {
      if (other.state === READY) this.countReady(other, run.level, -1);
      if (other.state === READY || other.state === WAITING) {
        other.state = FAILED;
        // A new token makes its queue entries stale: they are dropped, never placed.
        other.token++;
      }
    }
    for (const r of run.ready) r.readyPos = -1;
    run.ready.length = 0;
    run.readyDue.length = 0;
    this.forgetIfIdle(run);
  }

  /** Drops a failed run once none of its stages runs any more. */
  private forgetIfIdle(run: RunState): void {
    if (!run.stages.some((s) => s.state === RUNNING)) this.runs.delete(run.spec.id);
  }

  /** Stops the most recently started batch stage on a GPU large enough (policy `kill` only); it is queued again. */
  private killFor(s: StageState, now: number, decisions: Decision[]): boolean {
    let victim: StageState | null = null;
    for (const r of this.runningBatch) {
      if (r.gpus.length !== 1 || r.gpus[0]!.usableMiB < s.vramMiB) continue;
      if (victim === null || r.startedAt > victim.startedAt || (r.startedAt === victim.startedAt && r.run.seq > victim.run.seq)) victim = r;
    }
    if (victim === null) return false;
    const gpus = victim.gpus.map((g) => g.index);
    this.release(victim, now);
    // A kill is not the stage's fault: it is queued again without using up an attempt.
    this.makeReady(victim, now);
    const kill: Kill = { kind: "killed", runId: victim.run.spec.id, stageId: victim.spec.id, gpus, forRunId: s.run.spec.id, forStageId: s.spec.id };
    decisions.push(kill);
    return true;
  }

  /** Keeps the GPUs that could serve a waiting interactive-level stage away from lower-level stages this round. */
  private reserveFor(s: StageState): void {
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

  private wait(s: StageState, reason: WaitReason): Waiting {
    s.lastWait = reason;
    return { kind: "waiting", runId: s.run.spec.id, stageId: s.spec.id, reason };
  }

  private noFitReason(s: StageState): WaitReason {
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

  /** Why a stage is not running right now (null when it runs or is unknown). */
  explain(runId: string, stageId: string): WaitReason | null {
    const run = this.runs.get(runId);
    const s = run === undefined ? undefined : stageOf(run, stageId);
    if (s === undefined) return null;
    if (s.state === WAITING) return { code: "dependencies", pending: s.parents.filter((p) => p.state !== DONE).map((p) => p.spec.id) };
    if (s.state !== READY) return null;
    const quota = this.quotaReason(s.run.tenant, s);
    if (quota !== null) return quota;
    if (s.gpuCount > 0 && this.findGpus(s, AVOID_NONE, Number.NEGATIVE_INFINITY) === null) return this.noFitReason(s);
    if (s.lastWait !== null && s.lastWait.code !== "no-fit" && s.lastWait.code !== "gang") return s.lastWait;
    let ahead = 0;
    for (const t of this.tenantList) for (let level = s.run.level; level < LEVELS; level++) for (const q of t.queues[level]!) ahead += q.size;
    return { code: "priority", ahead: Math.max(0, ahead - 1), level: LEVEL_NAMES[s.run.level]! };
  }
}

function stageIssue(i: number, s: StageSpec, field: string, message: string): FieldIssue & { stageId?: string } {
  return { field: `stages[${i}].${field}`, message, stageId: s.id };
}

function fmtGiB(mib: number): string {
  const g = mib / MIB_PER_GIB;
  return Number.isInteger(g) ? String(g) : g.toFixed(1);
}
