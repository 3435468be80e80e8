/** The run as GET /v1/runs/:runId answers it (the fields the run page reads). */
import type { EdgeInput } from "../lib/dag.ts";
import type { AttemptInput } from "../lib/timeline.ts";

export interface StageView {
  readonly id: string;
  readonly status: string;
  readonly needs: readonly string[];
  readonly gpus: readonly string[];
  readonly node: string | null;
  readonly attempts: number;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly exitCode: number | null;
  readonly reason: string | null;
  readonly executor: string;
  readonly simulated: boolean;
  readonly peakVramMiB?: number;
  readonly wait?: { code: string; text: string } | null;
}

export interface RunDetail {
  readonly id: string;
  readonly status: string;
  readonly tenant: string;
  readonly workflow: string;
  readonly priority: string;
  readonly submittedBy: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly simulated: boolean;
  readonly stages: readonly StageView[];
  readonly artifacts: readonly { name: string; stage: string; bytes: number; sha256: string }[];
  readonly edges?: readonly EdgeInput[];
  readonly attempts?: readonly (AttemptInput & { simulated?: boolean })[];
}

export const TERMINAL_RUN = new Set(["succeeded", "failed", "cancelled"]);
export const TERMINAL_STAGE = new Set(["succeeded", "failed", "cancelled"]);
