/**
 * How the agent records into its audit log. `record` is for what must not happen unrecorded (mutating
 * requests, artifact reads): it throws AuditUnavailableError and the caller refuses. `note` is for what
 * already happened (responses, scheduling decisions): a failure is logged loudly, and the log stays closed
 * to appends, so the next mutating request is refused.
 */
import type { Logger } from "pino";
import { AuditUnavailableError, type AuditEvent, type AuditLog } from "../../security/audit/index.ts";

/** The actor of what the agent does on its own (scheduling, key rotation, config load). */
export const AGENT_ACTOR = "gpufabric-agent";

export class AuditTrail {
  constructor(
    private readonly log: AuditLog,
    private readonly logger: Logger
  ) {}

  /** Durable before it resolves; throws AuditUnavailableError when the event cannot be recorded. */
  async record(event: AuditEvent): Promise<void> {
    try {
      await this.log.append(event);
    } catch (err) {
      if (err instanceof AuditUnavailableError) {
        this.logger.error({ err, action: event.action }, "AUDIT LOG UNAVAILABLE: refusing the request");
        throw err;
      }
      // A malformed event is the agent's bug: it must not pass unrecorded either.
      throw new AuditUnavailableError(`the audit event '${event.action}' could not be recorded: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Records without blocking the caller on failure (which is logged). */
  note(event: AuditEvent): Promise<void> {
    return this.log.append(event).then(
      () => undefined,
      (err: unknown) => this.logger.error({ err, action: event.action }, "AUDIT LOG UNAVAILABLE: an event could not be recorded")
    );
  }

  get unavailable(): boolean {
    return this.log.unavailable !== undefined;
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
