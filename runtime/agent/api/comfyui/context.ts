/** What the ComfyUI routes share: the parts of the API, the prompt view of runs, uploads, the socket hub, hidden history. */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyRequest } from "fastify";
import type { Identity } from "../../../security/identity/index.ts";
import { ApiError } from "../../service/api-error.ts";
import type { SubmissionContext } from "../../service/submission.ts";
import type { RunDetail } from "../../store/types.ts";
import type { HttpParts } from "../parts.ts";
import type { ComfyPrompts } from "./prompts.ts";
import type { ComfyUploads } from "./uploads.ts";
import type { ComfyWsHub } from "./ws-hub.ts";

export interface ComfyApi {
  readonly parts: HttpParts;
  readonly submission: SubmissionContext;
  readonly prompts: ComfyPrompts;
  readonly uploads: ComfyUploads;
  readonly hub: ComfyWsHub;
  readonly hidden: HiddenHistory;
  /** ComfyUI's queue counter: each prompt without a `number` gets the next one (`front`: its negative). */
  nextNumber(): number;
}

/** The caller's run that is a ComfyUI prompt, or undefined (another tenant's id reads as missing). */
export async function loadPrompt(api: ComfyApi, request: FastifyRequest, promptId: string): Promise<RunDetail | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(promptId)) return undefined;
  const detail = await api.parts.store.getRun(request.identity!.tenant, promptId.toLowerCase());
  return detail?.run.format === "comfyui" ? detail : undefined;
}

/**
 * Cancels a prompt as its caller may: its submitter, or an admin of the tenant (as `POST /v1/runs/{id}/cancel`).
 * Returns whether the run was still open.
 */
export async function cancelPrompt(api: ComfyApi, identity: Identity, detail: RunDetail): Promise<boolean> {
  const decision = api.parts.authorizer.authorize(identity, "runs:cancel", { tenant: detail.run.tenant, owner: detail.run.submittedBy });
  if (!decision.allowed) {
    throw new ApiError(decision.status, decision.reason, `prompt '${detail.run.id}' was queued by another subject: only it or an admin of the tenant may stop it`, "prompt_id");
  }
  const run = await api.parts.loop.cancel(identity.tenant, detail.run.id);
  return run !== undefined;
}

/**
 * History entries a tenant cleared or deleted (`POST /history`): kept in one small file per tenant
 * beside the uploads, so a restart, or another control plane, does not bring them back.
 */
export class HiddenHistory {
  private readonly cache = new Map<string, { clearedBefore: string | null; deleted: Set<string> }>();

  constructor(private readonly root: string) {}

  private async load(tenant: string) {
    let state = this.cache.get(tenant);
    if (state !== undefined) return state;
    try {
      const doc = JSON.parse(await readFile(join(this.root, `${tenant}.json`), "utf8")) as { clearedBefore?: string | null; deleted?: string[] };
      state = { clearedBefore: doc.clearedBefore ?? null, deleted: new Set(doc.deleted ?? []) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      state = { clearedBefore: null, deleted: new Set() };
    }
    this.cache.set(tenant, state);
    return state;
  }

  async isHidden(tenant: string, runId: string, createdAt: string): Promise<boolean> {
    const state = await this.load(tenant);
    return state.deleted.has(runId) || (state.clearedBefore !== null && createdAt <= state.clearedBefore);
  }

  async clear(tenant: string, before: string): Promise<void> {
    const state = await this.load(tenant);
    state.clearedBefore = before;
    state.deleted.clear();
    await this.save(tenant, state);
  }

  async delete(tenant: string, ids: readonly string[]): Promise<void> {
    const state = await this.load(tenant);
    for (const id of ids) state.deleted.add(id);
    // Only the newest deletions are kept: ComfyUI's own history holds at most 10,000 entries.
    if (state.deleted.size > 10_000) state.deleted = new Set([...state.deleted].slice(-10_000));
    await this.save(tenant, state);
  }

  private async save(tenant: string, state: { clearedBefore: string | null; deleted: Set<string> }): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const file = join(this.root, `${tenant}.json`);
    await writeFile(`${file}.part`, JSON.stringify({ clearedBefore: state.clearedBefore, deleted: [...state.deleted] }), { mode: 0o600 });
    await rename(`${file}.part`, file);
  }
}
