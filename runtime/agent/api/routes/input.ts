/** Route input checked with a zod schema: a 400 naming each field at fault and how to fix it. */
import type { z } from "zod";
import { issuesFromZod } from "../../../config/errors.ts";
import { ApiError } from "../../service/api-error.ts";

/** `where`: "query" or "params", prefixed to each field (`query.minutes`). */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: "query" | "params"): z.infer<S> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) throw ApiError.fromIssues(issuesFromZod(parsed.error), where);
  return parsed.data;
}
