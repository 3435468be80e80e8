/** zod issues turned into FieldIssues, with a did-you-mean for unknown fields. */
import type { z } from "zod";
import { formatPath, type FieldIssue } from "../config/errors.ts";
import { didYouMean } from "./suggest.ts";

/** Internal zod 4 definition fields this module reads to find the fields an object accepts. */
interface SchemaDef {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly element?: z.ZodType;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
}

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

/** Field names the object schema at `path` accepts (empty when the path does not lead to an object). */
export function knownFieldsAt(root: z.ZodType, path: readonly PropertyKey[]): string[] {
  let schemas: z.ZodType[] = [root];
  const unwrap = (list: z.ZodType[]): z.ZodType[] => {
    const out: z.ZodType[] = [];
    const stack = [...list];
    while (stack.length > 0) {
      const s = stack.pop()!;
      const def = defOf(s);
      if ((def.type === "optional" || def.type === "default" || def.type === "nullable" || def.type === "readonly") && def.innerType) stack.push(def.innerType);
      else if (def.type === "pipe" && def.in) stack.push(def.in);
      else if (def.type === "union" && def.options) stack.push(...def.options);
      else out.push(s);
    }
    return out;
  };
  for (const part of path) {
    const next: z.ZodType[] = [];
    for (const s of unwrap(schemas)) {
      const def = defOf(s);
      if (typeof part === "number" && def.type === "array" && def.element) next.push(def.element);
      else if (typeof part === "string" && def.type === "object" && def.shape?.[part]) next.push(def.shape[part]);
      else if (typeof part === "string" && def.type === "record" && def.valueType) next.push(def.valueType);
    }
    schemas = next;
  }
  return unwrap(schemas).flatMap((s) => Object.keys(defOf(s).shape ?? {}));
}

/** One FieldIssue per problem; an unknown field gets its own path and the closest known field name. */
export function issuesFromSchema(error: z.ZodError, root: z.ZodType): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const known = knownFieldsAt(root, issue.path);
      for (const key of issue.keys) {
        const allowed = known.length > 0 ? ` (allowed here: ${known.join(", ")})` : "";
        issues.push({ field: formatPath([...issue.path, key]), message: `unknown field${didYouMean(key, known) || allowed}` });
      }
    } else if (issue.code === "invalid_type" && issue.message.includes("received undefined")) {
      issues.push({ field: formatPath(issue.path), message: `is required (${issue.message.replace(/^Invalid input: /, "").replace(/, received undefined$/, "")})` });
    } else {
      issues.push({ field: formatPath(issue.path), message: issue.message });
    }
  }
  return issues;
}
