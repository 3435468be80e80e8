/**
 * Follows key rotation without downtime: when the keyring's current version changes (a `gpufabric keys
 * rotate`, or an updated Secret), every artifact and sealed database field is rewrapped to it in the
 * background. Only wrapped data keys change; payloads are never decrypted. Afterwards the old version is
 * unused and `gpufabric keys retire` can remove it.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { PlatformConfig } from "../../config/schema.ts";
import { rewrapFile, rewrapValue, type FileKeyring, type ObjectContext } from "../../security/crypto/index.ts";
import type { Store } from "../store/types.ts";
import { AGENT_ACTOR, type AuditTrail } from "./audit-trail.ts";
import { artifactContextOf, logContext } from "./sealing.ts";
import { fieldContext, isSealed, SEALED_KEY, type SealedField } from "./sealed-fields.ts";

export interface RewrapReport {
  readonly toVersion: number;
  /** Artifact and log files rewrapped. */
  readonly artifacts: number;
  readonly fields: number;
  /** The agent's own sealed files rewrapped (the model stand-in key). */
  readonly agentFiles: number;
}

/** Runs past this many per tenant are left for the next pass. */
const RUNS_PER_PASS = 10_000;

export class KeyRotationFollower {
  private seen: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly o: {
      readonly keyring: FileKeyring;
      readonly store: Store;
      readonly tenants: PlatformConfig["tenants"];
      readonly artifactsRoot: string;
      /** Sealed stage logs: `<root>/<run>/<stage>/<file>`. */
      readonly logsRoot: string;
      /** Sealed files of the agent's own (the model stand-in key), each with its context. */
      readonly agentFiles?: ReadonlyArray<{ readonly path: string; readonly context: ObjectContext }>;
      readonly audit: AuditTrail;
      readonly logger: Logger;
      readonly checkEveryMs: number;
    }
  ) {}

  async start(): Promise<void> {
    // Other versions besides the current one: objects may still use them (a rotation made while no agent ran,
    // or a rewrap cut off by a stop), so the first check rewraps; rewrapping what is current already is a no-op.
    const [current, versions] = await Promise.all([this.o.keyring.currentVersion(), this.o.keyring.versions()]);
    this.seen = versions.length > 1 ? undefined : current;
    this.timer = setInterval(() => void this.check(), this.o.checkEveryMs);
    this.timer.unref();
  }

  /** Looks at the keyring's current version once; rewraps when it changed. */
  check(): Promise<void> {
    this.running ??= this.checkOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  private async checkOnce(): Promise<void> {
    let current: number;
    try {
      current = await this.o.keyring.currentVersion();
    } catch (err) {
      this.o.logger.error({ err }, "the keyring could not be re-read; data keys stay wrapped as they are");
      return;
    }
    if (current === this.seen) return;
    const from = this.seen;
    await this.o.audit.note({ actor: AGENT_ACTOR, action: "keys.rotation-seen", object: `keyring/v${current}`, outcome: "success", data: { from: from ?? null, to: current } });
    try {
      const report = await this.rewrapAll(current);
      this.seen = current;
      this.o.logger.info({ ...report }, "rewrapped every artifact and sealed field to the current key version");
      await this.o.audit.note({ actor: AGENT_ACTOR, action: "keys.rewrap", object: `keyring/v${current}`, outcome: "success", data: { ...report } });
    } catch (err) {
      // Left unseen, so the next check tries again.
      this.o.logger.error({ err }, "rewrap to the current key version failed; it is retried");
      await this.o.audit.note({ actor: AGENT_ACTOR, action: "keys.rewrap", object: `keyring/v${current}`, outcome: "failure", data: { error: (err as Error).message.slice(0, 500) } });
    }
  }

  private async rewrapAll(toVersion: number): Promise<RewrapReport> {
    const { keyring, store } = this.o;
    let artifacts = 0;
    let fields = 0;
    let agentFiles = 0;
    for (const file of this.o.agentFiles ?? []) if (await rewrapFile(keyring, file.context, file.path)) agentFiles++;
    for (const tenant of this.o.tenants) {
      for (const run of await store.listRuns(tenant.name, { limit: RUNS_PER_PASS })) {
        const detail = await store.getRun(tenant.name, run.id);
        if (detail === undefined) continue;
        for (const artifact of detail.artifacts) {
          if (await rewrapFile(keyring, artifactContextOf(this.o.artifactsRoot, tenant.name, artifact.path), artifact.path)) artifacts++;
        }
        for (const stageId of await listDir(join(this.o.logsRoot, run.id))) {
          for (const file of await listDir(join(this.o.logsRoot, run.id, stageId))) {
            if (await rewrapFile(keyring, logContext(tenant.name, run.id, stageId, file), join(this.o.logsRoot, run.id, stageId, file))) artifacts++;
          }
        }
        const rewrapField = async (field: SealedField, stored: unknown): Promise<unknown> => {
          if (!isSealed(stored)) return stored;
          const before = Buffer.from(stored[SEALED_KEY], "base64");
          const after = await rewrapValue(keyring, before, fieldContext(tenant.name, run.id, field));
          if (after.equals(before)) return stored;
          fields++;
          return { [SEALED_KEY]: after.toString("base64") };
        };
        const document = await rewrapField("document", detail.document);
        const inputs = await rewrapField("inputs", detail.inputs);
        if (document !== detail.document || inputs !== detail.inputs) {
          await store.replaceRunFields(tenant.name, run.id, { document, inputs: inputs as Record<string, unknown> });
        }
      }
    }
    await store.compact();
    return { toVersion, artifacts, fields, agentFiles };
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() || e.isFile()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
