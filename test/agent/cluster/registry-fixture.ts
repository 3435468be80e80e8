/**
 * What the worker-registry tests share: a pool of two H100 nodes, a worker's registration, an attempt,
 * and a leader's registry over a real scheduler and a real keyring in a fresh temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { PoolConfig } from "../../../runtime/config/schema.ts";
import { Scheduler } from "../../../runtime/scheduler/scheduler.ts";
import { inventoryFromPools } from "../../../runtime/scheduler/inventory.ts";
import { FileKeyring } from "../../../runtime/security/crypto/index.ts";
import type { AuditEvent } from "../../../runtime/security/audit/index.ts";
import { WorkerRegistry } from "../../../runtime/agent/cluster/registry.ts";
import type { RegisterRequest } from "../../../runtime/agent/cluster/protocol.ts";
import type { AttemptSpec } from "../../../runtime/agent/executors/types.ts";

/** Two nodes (n0, n1) of two H100s each: GPU indexes 0, 1 on n0 and 2, 3 on n1. */
export const twoNodePool: PoolConfig = {
  name: "p",
  gpu: { model: "H100-80GB", product: "NVIDIA-H100-80GB-HBM3", memoryMiB: 81_920 },
  nodes: 2,
  gpusPerNode: 2,
  sharing: { mode: "exclusive" },
  devices: ["n0", "n1"].flatMap((node) => [0, 1].map((index) => ({ id: `${node}-g${index}`, node, index, memoryMiB: 81_920 }))),
  nodeSelector: {},
  priorityClasses: { interactive: "i", batch: "b" },
  tenantQuotas: {},
};

/** A worker on `node` offering two simulated H100s. */
export const registerRequest = (node: string, extra: Partial<RegisterRequest> = {}): RegisterRequest => ({
  protocol: 1,
  node,
  devices: [0, 1].map((index) => ({ index, uuid: null, name: "H100", memoryMiB: 81_920, simulated: true })),
  residentModels: [],
  isolation: { sandbox: "per-tenant", unsafe: false },
  ...extra,
});

/** Attempt 1 of stage `render` of run-1, on n1's first GPU. */
export const attemptSpec = (over: Partial<AttemptSpec> = {}): AttemptSpec => ({
  attemptId: "att-1",
  runId: "run-1",
  tenant: "studio",
  stageId: "render",
  number: 1,
  stage: { id: "render", needs: [], resources: { gpus: 1, vramMiB: 1024 } } as unknown as AttemptSpec["stage"],
  gpus: [{ id: "n1-g0", uuid: null, simulated: true }],
  inputs: [],
  ...over,
});

export interface RegistryHarness {
  readonly dir: string;
  readonly keys: FileKeyring;
  readonly scheduler: Scheduler;
  readonly registry: WorkerRegistry;
  /** The audit events the registry has written, in order. */
  readonly audit: AuditEvent[];
  /** How many times the registry has said its workers changed. */
  changes(): number;
  /** Closes the registry and removes the folder. */
  close(): void;
}

/** A leader's registry at `epoch` over `pool`, its shared storage and keyring under a fresh folder named from `prefix`. */
export function openRegistry(opts: { readonly prefix: string; readonly pool?: PoolConfig; readonly epoch: number }): RegistryHarness {
  const pool = opts.pool ?? twoNodePool;
  const dir = mkdtempSync(join(tmpdir(), opts.prefix));
  const keys = FileKeyring.create(join(dir, "keyring"));
  const scheduler = new Scheduler({ gpus: inventoryFromPools([pool]) });
  const audit: AuditEvent[] = [];
  let changes = 0;
  const registry = new WorkerRegistry({
    pool,
    scheduler,
    epoch: opts.epoch,
    leaseMs: 1000,
    sharedDir: join(dir, "shared"),
    keys,
    logger: pino({ level: "silent" }),
    audit: (e) => audit.push(e),
    onChange: () => changes++,
  });
  return {
    dir,
    keys,
    scheduler,
    registry,
    audit,
    changes: () => changes,
    close: () => {
      registry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
