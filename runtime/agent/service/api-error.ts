/** Errors the HTTP API answers with: `{ "error": { "code", "message", "field"? } }` and a status. */
import type { FieldIssue } from "../../config/errors.ts";

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string; readonly rule?: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Id of the run-time rule that refused a submission (403 only). */
    readonly rule?: string
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** A 400 for the first issue of a validation, prefixed with where the input came from (`workflow`). */
  static fromIssues(issues: readonly FieldIssue[], prefix?: string): ApiError {
    const first = issues[0] ?? { field: "(root)", message: "is invalid" };
    const field = prefix === undefined ? first.field : first.field === "(root)" ? prefix : `${prefix}.${first.field}`;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? "s" : ""})` : "";
    return new ApiError(400, "invalid-request", `${field}: ${first.message}${more}`, field);
  }

  body(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field !== undefined && { field: this.field }),
        ...(this.rule !== undefined && { rule: this.rule }),
      },
    };
  }
}
