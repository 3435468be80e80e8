/**
 * Every action an API route can perform, with the least role that may perform it. A route names one
 * action; an action missing here is denied (deny by default).
 */
import type { Role } from "../../config/schema.ts";

export interface ActionSpec {
  /** Least role of the caller's tenant that may perform the action. */
  readonly role: Role;
  /** Least role to perform it on an object owned by another subject of the same tenant. */
  readonly othersRole?: Role;
  readonly description: string;
}

export const ACTIONS = {
  "runs:submit": { role: "submitter", description: "submit a workflow run" },
  "runs:read": { role: "viewer", description: "list runs and read a run's status, stages and events" },
  "runs:cancel": { role: "submitter", othersRole: "admin", description: "cancel a run (another subject's run: admin)" },
  "artifacts:read": { role: "viewer", description: "download a stage's output artifacts" },
  "uploads:write": { role: "submitter", description: "upload an image for the tenant's ComfyUI prompts (POST /comfyui/upload/image)" },
  "history:write": { role: "submitter", description: "clear or delete entries of the tenant's ComfyUI history (POST /comfyui/history)" },
  "logs:read": { role: "viewer", description: "read a stage's logs" },
  "workflows:read": { role: "viewer", description: "list the workflows the tenant may run" },
  "gpus:read": { role: "viewer", description: "read the GPU inventory and its use" },
  "queue:read": { role: "viewer", description: "read the scheduling queue (the tenant's own entries)" },
  "metrics:read": { role: "viewer", description: "read the tenant's metrics" },
  "usage:read": { role: "viewer", description: "read the tenant's GPU usage (GPU-seconds, VRAM-GiB-seconds) and export it as CSV" },
  "admin:roles-read": { role: "admin", description: "read the tenant's role bindings" },
  "admin:audit-read": { role: "admin", description: "read the tenant's audit log entries" },
  "admin:keyring-read": { role: "admin", description: "list the keyring's versions (never key material)" },
  "admin:runs-purge": { role: "admin", description: "delete a finished run and its artifacts before retention ends" },
} as const satisfies Record<string, ActionSpec>;

export type Action = keyof typeof ACTIONS;

export function isAction(value: string): value is Action {
  return Object.hasOwn(ACTIONS, value);
}

const RANK: Readonly<Record<Role, number>> = { viewer: 1, submitter: 2, admin: 3 };

/** Whether `held` includes everything `needed` may do. */
export function roleAtLeast(held: Role, needed: Role): boolean {
  return RANK[held] >= RANK[needed];
}

export function higherRole(a: Role, b: Role): Role {
  return RANK[a] >= RANK[b] ? a : b;
}
