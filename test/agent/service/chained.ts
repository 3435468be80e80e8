/** Workflows of the chained-stage fixture, for tests that check what each stage finds in its input folder. */
import { join } from "node:path";
import { REPO_ROOT } from "./harness.ts";

/** Checks its inputs (exit code 3 when one is missing), works, then writes `<stage>.txt`. */
export const CHAINED_STAGE = join(REPO_ROOT, "test/agent/fixtures/chained-stage.mjs");

/** A native workflow whose stages run the chained-stage fixture: each needs the stages listed, and checks their outputs. */
export function chainedWorkflow(
  name: string,
  stages: ReadonlyArray<{ id: string; needs?: string[]; ms: number }>,
  env: Record<string, string> = {}
): Record<string, unknown> {
  return {
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name },
    spec: {
      stages: stages.map((s) => ({
        id: s.id,
        ...(s.needs && { needs: s.needs }),
        resources: { gpus: 1, vram: "1Gi" },
        run: { command: [process.execPath, CHAINED_STAGE, s.id, String(s.ms), ...(s.needs ?? [])], env, timeoutSeconds: 60 },
        estimate: { durationSeconds: s.ms / 1000 },
      })),
    },
  };
}
