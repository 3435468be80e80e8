import { expect } from "vitest";
import { ValidationError, type FieldIssue } from "../../runtime/config/errors.ts";

/** Runs `fn`, expects a ValidationError, and returns its issues. */
export function issuesOf(fn: () => unknown): readonly FieldIssue[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues;
  }
  throw new Error("expected a ValidationError, but nothing was thrown");
}

/** A native workflow document with the given stages. */
export function nativeDoc(stages: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "test" }, spec: { stages, ...extra } };
}

/** A linear chain of n stages s0 → s1 → … */
export function chainDoc(n: number): Record<string, unknown> {
  return nativeDoc(Array.from({ length: n }, (_, i) => ({ id: `s${i}`, ...(i > 0 && { needs: [`s${i - 1}`] }), resources: { gpus: 0 } })));
}
