import type { z } from "zod";

/** One problem found in an input, with the path of the field at fault. */
export interface FieldIssue {
  readonly field: string;
  readonly message: string;
}

/** Formats a path like `pools[0].sharing.replicas`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || "(root)";
}

export function issuesFromZod(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ field: formatPath(issue.path), message: issue.message }));
}

/** Thrown when an input does not validate; the message lists every field at fault. */
export class ValidationError extends Error {
  readonly issues: readonly FieldIssue[];

  constructor(what: string, issues: readonly FieldIssue[]) {
    super(`${what} is invalid:\n${issues.map((i) => `  - ${i.field}: ${i.message}`).join("\n")}`);
    this.name = "ValidationError";
    this.issues = issues;
  }
}
