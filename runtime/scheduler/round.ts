/**
 * One scheduling round: the loop that takes ready stages in dispatch order (highest level, then
 * lowest weighted share, then the tenant's own order), finds them GPUs and commits or leaves them
 * waiting, and the scratch it needs. The scratch lives here, not in the scheduler's state: it means
 * something only during a round. One Round object serves every round of a scheduler, reset at the
 * start of each, to spare the allocations.
 */
import type { SchedulerSettings } from "../config/schema.ts";
import type { GpuIndex, GpuState } from "./gpu-state.ts";
import type { GpuSearch } from "./placement.ts";
import { AVOID_ALL, AVOID_NODE, AVOID_NONE, BATCH, INTERACTIVE, NONE, NO_GPUS, READY, quotaReason, type EntryQueue, type StageState, type TenantState } from "./records.ts";
import type { SchedulerState } from "./state.ts";
import type { Decision } from "./types.ts";

/** Free GPUs with resident models looked at when searching a tenant's queue for a stage that reuses one. */
const AFFINITY_SCAN = 16;

export class Round {
  /** Rounds so far: a tenant whose stage hit its quota is not looked at again at that level this round. */
  number = 0;
  private readonly index: GpuIndex;
  private readonly search: GpuSearch;
  private readonly settings: SchedulerSettings;
  /** Most free slots on one node, as of the start of the round (gang stages need several). */
  private maxNodeFree = 0;
  /**
   * The stages examined and left waiting, with their token and due when taken, and whether they
   * were taken out of turn (then in no queue). Filled by index up to a count: emptying an array by
   * its length gives its storage back.
   */
  private readonly blocked: StageState[] = [];
  private readonly blockedToken: number[] = [];
  private readonly blockedDue: number[] = [];
  private readonly blockedFresh: boolean[] = [];
  private nBlocked = 0;
  /** What affinityPick took besides the stage: its due (its token is the stage's new one). */
  private pickedDue = 0;
  /** Per GPU count, the least VRAM a stage asked for and found no room for this round (Infinity: none). */
  private readonly failMiB: number[];
  private readonly eligible: boolean[] = [];
  /** Per tenant, its weighted share while pickTenant looks at a level (NaN: not a candidate). */
  private readonly shares: number[] = [];
  /** What pickTenant chose besides the tenant (kept in fields to spare an allocation per pick). */
  private pickedLevel = 0;
  private pickedShare = 0;
  private pickedQueue: EntryQueue | null = null;

  /** @param backfillWindow blocked stages examined per round before giving up on backfilling */
  constructor(
    private readonly state: SchedulerState,
    private readonly backfillWindow: number,
  ) {
    this.index = state.index;
    this.search = state.search;
    this.settings = state.settings;
    this.failMiB = new Array<number>(Math.max(...this.index.nodeGpus.map((n) => n.length)) + 1).fill(Infinity);
  }

  /** Starts every ready CPU-only stage: they need no GPU, so nothing to search or wait for. */
  startCpuStages(now: number, decisions: Decision[]): void {
    const state = this.state;
    if (state.cpuReady.length > 0) {
      for (const entry of state.cpuReady.splice(0)) {
        if (entry.token !== entry.s.token || entry.s.state !== READY) continue;
        decisions.push(state.commit(entry.s, NO_GPUS, NONE, now, entry.s.run.level, 0, 0));
      }
    }
  }

  /**
   * Places ready GPU stages until the window of stages examined is used up, no GPU is left that
   * the next one could use, or no tenant has a stage that could start.
   */
  placeGpuStages(now: number, decisions: Decision[]): void {
    const state = this.state;
    const search = this.search;
    const index = this.index;
    const failMiB = this.failMiB;
    failMiB.fill(Infinity);
    this.nBlocked = 0;
    search.beginRound();
    this.maxNodeFree = index.maxNodeFree();
    let examined = 0;
    let reserving = false;
    // Few free GPUs need few candidates: the window grows with them, up to backfillWindow.
    const window = Math.min(this.backfillWindow, 16 + 4 * index.freeSlots);
    while (examined < window) {
      // GPUs free only on the node kept for a gang are no use to the stages after it.
      const usable = index.freeSlots - (search.reservedNode >= 0 ? index.nodeFreeSlots[search.reservedNode]! : 0);
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
      const quota = quotaReason(tenant, s);
      if (quota !== null) {
        tenant.blockedRound[level] = this.number;
        decisions.push(state.wait(s, quota));
        this.block(s, token, due, fresh);
        examined++;
        continue;
      }
      const knownFail = failMiB[gpus]!;
      let found: readonly GpuState[] | null = null;
      search.refusal = null;
      if (s.vramMiB < knownFail) {
        found = search.findGpus(s, level < INTERACTIVE && reserving ? AVOID_ALL : AVOID_NODE, now);
      }
      if (found === null && level === INTERACTIVE && s.run.original === INTERACTIVE && this.settings.preemption === "kill" && gpus === 1) {
        const victim = state.killFor(s, now, decisions);
        if (victim) found = search.findGpus(s, AVOID_NONE, now);
      }
      if (found === null) {
        const refusal = search.refusal;
        if (refusal === null && s.vramMiB < knownFail) failMiB[gpus] = s.vramMiB;
        decisions.push(state.wait(s, refusal ?? search.noFitReason(s)));
        if (refusal === null && level === INTERACTIVE && this.settings.preemption !== "never") {
          reserving = true;
          search.reserveFor(s);
        }
        this.block(s, token, due, fresh);
        examined++;
        continue;
      }
      decisions.push(state.commit(s, found, search.evictionsFor(s, found), now, level, share, found.length));
    }
  }

  /** Notes a stage examined and left waiting this round, as it was when taken. */
  private block(s: StageState, token: number, due: number, fresh: boolean): void {
    const n = this.nBlocked;
    this.blocked[n] = s;
    this.blockedToken[n] = token;
    this.blockedDue[n] = due;
    this.blockedFresh[n] = fresh;
    this.nBlocked = n + 1;
  }

  /** Puts the stages left waiting this round back in their queues, unless they changed since (then their slots are stale). */
  requeueBlocked(now: number): void {
    const blocked = this.blocked;
    const blockedToken = this.blockedToken;
    const blockedDue = this.blockedDue;
    const blockedFresh = this.blockedFresh;
    const n = this.nBlocked;
    this.nBlocked = 0;
    for (let i = 0; i < n; i++) {
      const s = blocked[i]!;
      if (blockedToken[i] !== s.token || s.state !== READY) continue;
      // Stages taken out of turn for affinity got a fresh token; the others are still live in the model and aging queues.
      if (blockedFresh[i]) this.state.enqueue(s, s.run.level, now, blockedDue[i]);
      else s.run.tenant.queues[s.run.level]![s.queueClass]!.push(s, s.run.virtualTime, s.run.seq, s.key, s.index, s.token, blockedDue[i]!);
    }
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
    const search = this.search;
    const refusal = search.refusal;
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
        if (top === undefined || !search.fits(g, top, AVOID_NONE)) continue;
        this.pickedDue = q.topDue();
        q.pop();
        search.refusal = refusal;
        // A fresh token leaves its slot in the main queue stale.
        top.token++;
        return top;
      }
    }
    search.refusal = refusal;
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
      if (this.state.readyAtLevel[level] === 0) continue;
      // Under policy `kill` an interactive stage may take a GPU from batch work, so every class is looked at.
      const mayKill = level === INTERACTIVE && this.settings.preemption === "kill";
      for (let c = 0; c < classes; c++) eligible[c] = mayKill || this.classEligible(level, c);
      // When no node has two free slots, gangs are looked at only at the interactive level and only
      // until one has reserved a node (no starvation): the others could not start this round anyway.
      eligible[classes] = this.maxNodeFree >= 2 || (level === INTERACTIVE && this.search.reservedNode < 0);
      // Tenants are tried lowest share first (ties: declaration order) and the first with a stage
      // that could start wins, so only that tenant's queues are looked at, not every tenant's.
      const shares = this.shares;
      const tenants = this.state.tenantList;
      let candidates = 0;
      for (let i = 0; i < tenants.length; i++) {
        const t = tenants[i]!;
        if (t.readyAt[level] === 0 || t.blockedRound[level] === this.number) shares[t.index] = NaN;
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
    return this.index.freeByClass[sizeClass]! > 0 || this.search.largerSpare(level, sizeClass) > 0;
  }

  /** Dominant-resource share over GPUs and VRAM held, divided by the tenant's weight. */
  private shareOf(t: TenantState): number {
    const g = t.heldGpus / this.index.gpus.length;
    const v = t.heldMiB / this.index.totalMiB;
    return (g > v ? g : v) / t.weight;
  }
}
