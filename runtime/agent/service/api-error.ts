/**
 * Errors the HTTP API answers with: `{ "error": { "code", "message", "field"?, "issues"? } }` and a status.
 * `field` names the first problem; `issues` (validation errors only) lists every problem, each with its field.
 */
import type { FieldIssue } from "../../config/errors.ts";

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string; readonly rule?: string; readonly issues?: readonly FieldIssue[] };
}

/** How many problems the message spells out; the rest are in `issues` (a client shows those). */
const MESSAGE_ISSUES = 10;
/** How many problems `issues` carries: a document with thousands of faults must not make a huge answer. */
const BODY_ISSUES = 100;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Id of the run-time rule that refused a submission (403 only). */
    readonly rule?: string,
    /** Every problem of a validation (the first is `field` and opens the message). */
    readonly issues?: readonly FieldIssue[]
  ) {
    super(message);
    this.name = "ApiError";
  }

  /**
   * A 400 naming every issue of a validation (the message up to MESSAGE_ISSUES of them, `issues` all up to
   * BODY_ISSUES), each field prefixed with where the input came from (`workflow`).
   */
  static fromIssues(issues: readonly FieldIssue[], prefix?: string): ApiError {
    const at = (field: string) => (prefix === undefined ? field : field === "(root)" ? prefix : `${prefix}.${field}`);
    const all = (issues.length > 0 ? issues : [{ field: "(root)", message: "is invalid" }]).map((i) => ({ field: at(i.field), message: i.message }));
    const first = all[0]!;
    let message = `${first.field}: ${first.message}`;
    if (all.length > 1) {
      const shown = all.slice(0, MESSAGE_ISSUES).map((i, n) => `[${n + 1}] ${i.field}: ${i.message}`);
      const rest = all.length - shown.length;
      message = `${all.length} problems: ${shown.join("; ")}${rest > 0 ? `; and ${rest} more problem${rest > 1 ? "s" : ""} (see issues)` : ""}`;
    }
    return new ApiError(400, "invalid-request", message, first.field, undefined, all.slice(0, BODY_ISSUES));
  }

  body(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field !== undefined && { field: this.field }),
        ...(this.rule !== undefined && { rule: this.rule }),
        ...(this.issues !== undefined && { issues: this.issues }),
      },
    };
  }
}
