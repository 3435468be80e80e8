/**
 * The ComfyUI cost model: table estimates per node, refined by what the agent observes. Observations
 * are kept per key (class type + model + work bucket) as exponentially weighted moving averages, so
 * recent runs count most and one outlier does not dominate.
 */
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../../config/errors.ts";
import type { ComfyNode } from "../model.ts";
import { ComfyGraphContext } from "./context.ts";
import { tableEstimate, type LoadedModel } from "./node-costs.ts";

export interface NodeEstimate {
  readonly nodeId: string;
  readonly classType: string;
  /** Whether the node runs on a GPU. */
  readonly gpu: boolean;
  /** Activation memory while the node runs, in MiB, not counting the weights in `loads`. */
  readonly vramMiB: number;
  /** Seconds of work, not counting model loading. */
  readonly durationS: number;
  /** Model weights the node puts on the GPU. */
  readonly loads: readonly LoadedModel[];
  readonly model?: string;
  /** The key observations of this kind of node are filed under. */
  readonly key: string;
  /** "table": from the class-type table; "default": class type unknown; "observed": refined by runs. */
  readonly estimated: "table" | "default" | "observed";
}

export interface Observation {
  readonly durationS: number;
  /** Peak activation memory of the node, in MiB, not counting resident model weights. */
  readonly peakVramMiB: number;
}

interface Entry {
  durationS: number;
  peakVramMiB: number;
  samples: number;
}

export const DEFAULT_EWMA_ALPHA = 0.3;
const SNAPSHOT_VERSION = 1;

const SnapshotSchema = z
  .object({
    version: z.literal(SNAPSHOT_VERSION, { error: `must be ${SNAPSHOT_VERSION}: the snapshot comes from an incompatible version` }),
    alpha: z.number().gt(0).lte(1),
    entries: z.array(
      z
        .object({
          key: z.string().min(1),
          durationS: z.number().nonnegative(),
          peakVramMiB: z.number().nonnegative(),
          samples: z.number().int().positive(),
        })
        .strict(),
    ),
  })
  .strict();

export type CostModelSnapshot = z.infer<typeof SnapshotSchema>;

export interface CostModelOptions {
  /** Weight of a new observation in the moving average, in (0, 1]. @default 0.3 */
  readonly alpha?: number;
}

/** "1MP"-style bucket of work: powers of two, so 1000×1000 and 1024×1024 share observations. */
export function workBucket(units: number): string {
  if (!(units > 0)) return "0";
  return `2^${Math.round(Math.log2(units))}`;
}

export function observationKey(classType: string, model: string | undefined, units: number): string {
  return `${classType}|${model ?? "-"}|${workBucket(units)}`;
}

export class CostModel {
  readonly alpha: number;
  private readonly entries = new Map<string, Entry>();

  constructor(options: CostModelOptions = {}) {
    const alpha = options.alpha ?? DEFAULT_EWMA_ALPHA;
    if (!(alpha > 0 && alpha <= 1)) {
      throw new ValidationError("cost model options", [{ field: "alpha", message: `is ${alpha}: must be more than 0 and at most 1 (e.g. 0.3)` }]);
    }
    this.alpha = alpha;
  }

  /**
   * Estimates one node. Pass the graph's context so the estimate can see the model, resolution and
   * steps the node works with; without it only the node's own inputs count.
   */
  estimateNode(node: ComfyNode, context: ComfyGraphContext = new ComfyGraphContext([node])): NodeEstimate {
    const base = tableEstimate(node, context);
    const key = observationKey(node.classType, base.model, base.workUnits);
    const observed = this.entries.get(key);
    return {
      nodeId: node.id,
      classType: node.classType,
      gpu: base.gpu,
      vramMiB: observed ? Math.ceil(observed.peakVramMiB) : base.vramMiB,
      durationS: observed ? observed.durationS : base.durationS,
      loads: base.loads,
      ...(base.model !== undefined && { model: base.model }),
      key,
      estimated: observed ? "observed" : base.source,
    };
  }

  /** Estimates every node of a graph. */
  estimateNodes(nodes: readonly ComfyNode[]): Map<string, NodeEstimate> {
    const context = new ComfyGraphContext(nodes);
    return new Map(nodes.map((n) => [n.id, this.estimateNode(n, context)]));
  }

  /** Records a run of a node filed under `key` (from its estimate); the first one sets the average. */
  observe(key: string, observation: Observation): void {
    const issues = [
      ...(typeof key === "string" && key.length > 0 ? [] : [{ field: "key", message: "must be the key of a node estimate" }]),
      ...(Number.isFinite(observation.durationS) && observation.durationS >= 0 ? [] : [{ field: "durationS", message: "must be zero or more seconds" }]),
      ...(Number.isFinite(observation.peakVramMiB) && observation.peakVramMiB >= 0 ? [] : [{ field: "peakVramMiB", message: "must be zero or more MiB" }]),
    ];
    if (issues.length > 0) throw new ValidationError("cost observation", issues);
    const entry = this.entries.get(key);
    if (!entry) {
      this.entries.set(key, { durationS: observation.durationS, peakVramMiB: observation.peakVramMiB, samples: 1 });
      return;
    }
    entry.durationS += this.alpha * (observation.durationS - entry.durationS);
    entry.peakVramMiB += this.alpha * (observation.peakVramMiB - entry.peakVramMiB);
    entry.samples += 1;
  }

  /** The observed averages for a key, if any. */
  observed(key: string): Readonly<Entry> | undefined {
    const entry = this.entries.get(key);
    return entry && { ...entry };
  }

  /** Everything observed, in a stable order, for the agent to persist. */
  snapshot(): CostModelSnapshot {
    const entries = [...this.entries.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, e]) => ({ key, durationS: e.durationS, peakVramMiB: e.peakVramMiB, samples: e.samples }));
    return { version: SNAPSHOT_VERSION, alpha: this.alpha, entries };
  }

  /** Replaces the observations with a snapshot's (validated; the model's own alpha is kept). */
  restore(snapshot: unknown): void {
    const result = SnapshotSchema.safeParse(snapshot);
    if (!result.success) throw new ValidationError("cost model snapshot", issuesFromZod(result.error));
    this.entries.clear();
    for (const e of result.data.entries) this.entries.set(e.key, { durationS: e.durationS, peakVramMiB: e.peakVramMiB, samples: e.samples });
  }
}
