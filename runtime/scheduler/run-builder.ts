/**
 * Admission: a submitted run checked (the first issue, naming the field at fault), its DAG built,
 * its stages ranked and its records made, then its first stages made ready. Runs of at most
 * SMALL_DAG stages (most) build their DAG as bit masks in scratch buffers kept here; the rest go
 * through buildDag, which also words the errors of a malformed DAG.
 */
import type { FieldIssue } from "../config/errors.ts";
import { buildDag, upwardRank, type Dag } from "./dag.ts";
import { MIB_PER_GIB } from "./inventory.ts";
import { planRun } from "./planner.ts";
import { BATCH, INTERACTIVE, NO_GPUS, NO_INDEXES, NO_STAGES, WAITING, type RunState, type StageState } from "./records.ts";
import type { SchedulerState } from "./state.ts";
import type { RunSpec, StageSpec, SubmitResult } from "./types.ts";

const ACCEPTED: SubmitResult = Object.freeze({ accepted: true });
/** Runs with more stages than this index them by id; smaller ones are searched. */
const BY_ID_MIN = 16;
/** Runs with at most this many stages (and no planning) build their DAG as bit masks in scratch buffers. */
const SMALL_DAG = 16;

const idOf = (s: StageSpec): string => s.id;
const zero = (): number => 0;
const nothing = (): null => null;

export class RunBuilder {
  private runSeq = 0;
  /** Children lists of small runs' stages by bit mask, shared: they are only read, and most runs repeat a few shapes. */
  private readonly childLists = new Map<number, readonly number[]>();
  /** submit's scratch for small runs (see smallDag): per stage, the bit mask of its children, its parent count, and more. */
  private readonly childMask = new Int32Array(SMALL_DAG);
  private readonly parentCount = new Int32Array(SMALL_DAG);
  private readonly pendingScratch = new Int32Array(SMALL_DAG);
  private readonly orderScratch = new Int32Array(SMALL_DAG);
  private readonly rankScratch = new Float64Array(SMALL_DAG);

  /** @param planOptions planning ahead for runs that ask for it */
  constructor(
    private readonly state: SchedulerState,
    private readonly planOptions: { readonly budget?: number; readonly seed?: number },
  ) {}

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
    let tenant = this.state.tenants.get(run.tenant);
    if (tenant === undefined) tenant = this.state.addTenant({ name: run.tenant, weight: 1 });
    const keys = dag === null ? this.rankScratch : this.stageKeys(run, dag);
    const level = run.priority === "interactive" ? INTERACTIVE : BATCH;
    // Made by map, which sizes them exactly (push would reserve room for 17), with no closure per run.
    const ids = specs.map(idOf);
    const pending = specs.map(zero);
    for (let i = 0; i < n; i++) pending[i] = dag === null ? this.parentCount[i]! : dag.parents[i]!.length;
    const record: RunState = {
      seq: this.runSeq++,
      spec: run,
      tenant,
      // Filled below; made by map for the same reason as ids.
      stages: specs.map(nothing) as unknown as StageState[],
      byId: n > BY_ID_MIN ? new Map() : null,
      ids,
      original: level,
      level,
      virtualTime: now - (level === INTERACTIVE ? 2 * this.state.settings.agingSeconds : 0),
      promotedAt: now,
      agingDue: Infinity,
      ready: [],
      readyDue: [],
      remaining: n,
      pending,
      failed: false,
    };
    const stages = record.stages;
    const gangClass = this.state.index.sizeClasses.length;
    for (let i = 0; i < n; i++) {
      const spec = specs[i]!;
      const sizeClass = this.state.index.classFor(spec.vramMiB);
      const s: StageState = {
        index: i,
        run: record,
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
        notBefore: 0,
      };
      stages[i] = s;
      record.byId?.set(spec.id, s);
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
    this.state.runs.set(run.id, record);
    for (let i = 0; i < n; i++) if (pending[i] === 0) this.state.makeReady(stages[i]!, now);
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
      const machines = this.state.index.gpus.filter((g) => g.usableMiB >= widest).length || this.state.index.gpus.length;
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
    if (this.state.runs.has(run.id)) return { field: "id", message: `run '${run.id}' was already submitted: give each run its own id` };
    if (this.state.closedTenants && !this.state.tenants.has(run.tenant)) {
      return { field: "tenant", message: `unknown tenant '${run.tenant}': declare it under tenants (known: ${[...this.state.tenants.keys()].join(", ")})` };
    }
    if (run.priority !== "interactive" && run.priority !== "batch") return { field: "priority", message: `must be 'interactive' or 'batch' (got ${JSON.stringify(run.priority)})` };
    const stages = run.stages;
    if (!Array.isArray(stages) || stages.length === 0) return { field: "stages", message: "a run needs at least one stage" };
    const tenant = this.state.tenants.get(run.tenant);
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
        const largest = Math.round(this.state.index.largestUsableMiB / MIB_PER_GIB);
        return stageIssue(
          i,
          s,
          "resources",
          gpus === 1
            ? `stage '${s.id}' needs ${fmtGiB(vramMiB)} GiB but the largest GPU offers ${largest} GiB after ${fmtGiB(this.state.settings.headroomMiB)} GiB headroom: lower its VRAM or add larger GPUs`
            : `stage '${s.id}' needs ${gpus} GPUs with ${fmtGiB(vramMiB)} GiB each on one node, and no node has that many: lower gpus/VRAM or add larger nodes`,
        );
      }
      if (gpuQuota !== null && gpus > gpuQuota) return stageIssue(i, s, "gpus", `needs ${gpus} GPUs but tenant '${tenant!.name}' may hold ${gpuQuota}: raise its gpuQuota`);
      if (vramQuota !== null && gpus * vramMiB > vramQuota) return stageIssue(i, s, "vramMiB", `needs ${gpus * vramMiB} MiB but tenant '${tenant!.name}' may hold ${vramQuota} MiB: raise its vramQuotaMiB`);
    }
    return null;
  }

  private fitsSomewhere(gpus: number, vramMiB: number): boolean {
    return gpus < this.state.fitMiB.length && vramMiB <= this.state.fitMiB[gpus]!;
  }
}

function stageIssue(i: number, s: StageSpec, field: string, message: string): FieldIssue & { stageId?: string } {
  return { field: `stages[${i}].${field}`, message, stageId: s.id };
}

function fmtGiB(mib: number): string {
  const g = mib / MIB_PER_GIB;
  return Number.isInteger(g) ? String(g) : g.toFixed(1);
}
