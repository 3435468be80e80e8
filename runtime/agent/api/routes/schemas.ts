/**
 * The zod schemas the run, artifact, catalog and probe routes validate their requests with. They are the
 * schemas /openapi.json documents (see ../openapi/registry.ts): a route reads its checked input through
 * `parseRequest(request, "METHOD path")`, which takes the schemas from the registry, so what is served and
 * what is documented are the same objects.
 */
import { z } from "zod";
import { checkName, type NameKind } from "../../../security/names/index.ts";
import { RUN_STATUSES, type RunStatus } from "../../store/types.ts";

/**
 * A safe name (run id, stage id, idempotency key): the message is the name check's own, and `field` is
 * the name the error gives the client (a header keeps its canonical spelling, e.g. `Idempotency-Key`).
 */
export function safeNameSchema(kind: NameKind, field: string, description: string) {
  return z
    .string()
    .superRefine((value, ctx) => {
      const check = checkName(kind, value);
      if (!check.ok) ctx.addIssue({ code: "custom", message: check.problem, params: { field } });
    })
    .transform((value) => value.normalize("NFC"))
    .meta({ description });
}

const EVENT_ID_HINT = `must be the id of an event (a whole number from 0 to ${Number.MAX_SAFE_INTEGER}), or 0 for the whole stream`;

/** An event id as sent (query or header): a whole number; the stream starts after it. */
function eventIdSchema(field: string, description: string) {
  return z
    .string()
    .superRefine((value, ctx) => {
      if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) ctx.addIssue({ code: "custom", message: EVENT_ID_HINT, params: { field } });
    })
    .meta({ description });
}

export const RunIdParams = z.object({ runId: safeNameSchema("run", "runId", "the run's id") });
export const StageParams = RunIdParams.extend({ stageId: safeNameSchema("stage", "stageId", "the stage's id within the run") });
export const ArtifactParams = RunIdParams.extend({ name: z.string().meta({ description: "the artifact's file name as the stage wrote it" }) });

export const SubmitHeaders = z.object({
  "idempotency-key": safeNameSchema("idempotencyKey", "Idempotency-Key", "a client-chosen key: a resubmission with the same key answers the first run (printable ASCII, up to 255 bytes)").optional(),
});

export const EventsQuery = z.object({ after: eventIdSchema("after", "stream the events after this id (0: from the start)").optional() });
export const EventsHeaders = z.object({
  "last-event-id": eventIdSchema("Last-Event-ID", "set by an EventSource that reconnects: takes the place of `after`").optional(),
});

export const ArtifactQuery = z.object({ stage: z.string().meta({ description: "the stage whose file to send, when several stages wrote the same name" }).optional() });
export const LogsQuery = z.object({ attempt: z.string().meta({ description: "the attempt's number (default: the latest)" }).optional() });

const RunStatusSchema = z.enum(RUN_STATUSES as [RunStatus, ...RunStatus[]]);

export const RunAccepted = z.object({ id: z.string(), status: RunStatusSchema });
export const LogsResponse = z.object({
  stage: z.string(),
  attempt: z.number().int(),
  simulated: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean().meta({ description: "true when only the last 256 KiB of a log is sent" }),
});
export const WorkflowsResponse = z.object({
  workflows: z.array(z.object({ name: z.string(), format: z.string(), priority: z.string(), stages: z.number().int() })),
});
export const ProbeResponse = z.object({ status: z.enum(["ok", "ready"]) });
