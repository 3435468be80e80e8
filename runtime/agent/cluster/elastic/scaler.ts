/**
 * What turns a pool's desired number of workers into workers. Two implementations share this interface:
 * the Kubernetes scale subresource of the pool's worker workload (a deployment), and local worker processes
 * (`gpufabric dev --workers auto`). The control plane's demand controller is the only caller.
 *
 * Scale-down never kills a stage: the platform stops surplus workers with SIGTERM, and a worker that gets
 * SIGTERM drains (it takes no new stages, lets its running stages finish, then exits), so a stage boundary is
 * the only place a worker goes away.
 */
export interface WorkerScaler {
  readonly kind: "kubernetes" | "local";
  /** The number of workers the platform runs or is starting for the pool now. */
  current(pool: string): Promise<number>;
  /** Asks the platform for `replicas` workers of the pool (idempotent; a no-op when it already has that many). */
  scaleTo(pool: string, replicas: number): Promise<void>;
  /** Stops whatever the scaler started (local processes); the Kubernetes scaler has nothing to stop. */
  close?(): Promise<void>;
}
