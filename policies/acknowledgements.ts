/**
 * Acknowledgements: a finding a team accepts, with the reason. They never hide a finding; reports
 * list acknowledged findings separately. They come from cdktf metadata (`Compliance.acknowledge`)
 * or, for any Terraform JSON, from an acknowledgement file given to `gpufabric check --ack`.
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ValidationError, issuesFromZod } from "../runtime/config/errors.ts";
import type { Acknowledgement, Resource } from "./model.ts";

/** An acknowledgement aimed at resources from outside them (a file): by address or construct path. */
export interface TargetedAcknowledgement extends Acknowledgement {
  /** `type.name` of one resource. */
  readonly address?: string;
  /** A construct path; it covers the construct and everything under it. */
  readonly constructPath?: string;
}

export const MIN_REASON_LENGTH = 10;

const FileSchema = z
  .object({
    acknowledgements: z.array(
      z
        .object({
          ruleId: z.string().regex(/^GF-[A-Z]+-\d{3}$/, "must be a rule id such as GF-POD-001 (see docs/policies.md)"),
          address: z.string().regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, "must be a resource address `type.name`").optional(),
          constructPath: z.string().min(1).optional(),
          reason: z.string().trim().min(MIN_REASON_LENGTH, `must explain the acknowledgement in at least ${MIN_REASON_LENGTH} characters`),
        })
        .strict()
        .refine((a) => a.address !== undefined || a.constructPath !== undefined, {
          message: "name what is acknowledged: set `address` (type.name) or `constructPath`",
        }),
    ),
  })
  .strict();

/** Reads an acknowledgement file (JSON or YAML): `{ acknowledgements: [{ ruleId, address | constructPath, reason }] }`. */
export function loadAcknowledgementFile(file: string): TargetedAcknowledgement[] {
  let doc: unknown;
  try {
    const text = readFileSync(file, "utf8");
    doc = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ValidationError(`acknowledgement file ${file}`, [{ field: "(root)", message: `cannot be read: ${(err as Error).message}` }]);
  }
  const parsed = FileSchema.safeParse(doc);
  if (!parsed.success) throw new ValidationError(`acknowledgement file ${file}`, issuesFromZod(parsed.error));
  return parsed.data.acknowledgements.map((a) => ({ ...a, source: file }));
}

export function targetOf(ack: TargetedAcknowledgement): string {
  return ack.address ?? ack.constructPath ?? ack.source;
}

export function ackCovers(ack: TargetedAcknowledgement, resource: Resource): boolean {
  if (ack.address !== undefined && ack.address !== resource.address) return false;
  if (ack.constructPath !== undefined) {
    const path = resource.constructPath;
    if (!path || !(path === ack.constructPath || path.startsWith(`${ack.constructPath}/`))) return false;
  }
  return true;
}
