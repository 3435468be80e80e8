import type { Sharing } from "../runtime/config/schema.ts";
import { PropIssues } from "./validation.ts";

/** Time-slicing replica bounds: fewer than 2 is no sharing, more than 64 starves every workload. */
export const TIME_SLICING_REPLICAS = { min: 2, max: 64 } as const;

const MIG_PROFILE_NAME = /^\d+g\.\d+gb$/;

/**
 * How a pool's GPUs are handed to workloads. Which MIG profiles a model offers is checked by the
 * GpuPool that uses the sharing, since it knows the model.
 */
export class GpuSharing {
  /** One workload per GPU (the default, and the only mode with full isolation). */
  static exclusive(): GpuSharing {
    return new GpuSharing({ mode: "exclusive" });
  }

  /**
   * Partition every GPU into MIG instances with memory and fault isolation.
   * @param profiles instances per GPU by profile, e.g. `{ "3g.40gb": 2 }`.
   */
  static mig(profiles: Readonly<Record<string, number>>): GpuSharing {
    const issues = new PropIssues("GpuSharing.mig(profiles)");
    const entries = Object.entries(profiles ?? {});
    if (entries.length === 0) issues.add("profiles", "is empty: give at least one profile with its instances per GPU, e.g. { \"3g.40gb\": 2 }");
    for (const [profile, count] of entries) {
      const field = `profiles[${JSON.stringify(profile)}]`;
      if (!MIG_PROFILE_NAME.test(profile)) issues.add(field, `'${profile}' is not a MIG profile name: write '<compute slices>g.<memory>gb', e.g. '3g.40gb'`);
      issues.positiveInt(field, count);
    }
    issues.throwIfAny();
    return new GpuSharing({ mode: "mig", profiles: { ...profiles } });
  }

  /**
   * Let `replicas` workloads take turns on each GPU. No memory or fault isolation between them.
   * @param replicas workloads per GPU, 2 to 64.
   */
  static timeSlicing(replicas: number): GpuSharing {
    const issues = new PropIssues("GpuSharing.timeSlicing(replicas)");
    if (issues.positiveInt("replicas", replicas) && (replicas < TIME_SLICING_REPLICAS.min || replicas > TIME_SLICING_REPLICAS.max)) {
      issues.add(
        "replicas",
        `${replicas} is out of range: give ${TIME_SLICING_REPLICAS.min} to ${TIME_SLICING_REPLICAS.max} workloads per GPU (use GpuSharing.exclusive() for one)`,
      );
    }
    issues.throwIfAny();
    return new GpuSharing({ mode: "time-slicing", replicas });
  }

  private constructor(private readonly config: Sharing) {}

  get mode(): Sharing["mode"] {
    return this.config.mode;
  }

  /** MIG instances per GPU by profile; empty unless the mode is `mig`. */
  get migProfiles(): Readonly<Record<string, number>> {
    return this.config.mode === "mig" ? this.config.profiles : {};
  }

  /** Workloads per GPU under time-slicing; 1 otherwise. */
  get replicas(): number {
    return this.config.mode === "time-slicing" ? this.config.replicas : 1;
  }

  /** The sharing as the platform config records it. */
  toConfig(): Sharing {
    switch (this.config.mode) {
      case "exclusive":
        return { mode: "exclusive" };
      case "mig":
        return { mode: "mig", profiles: { ...this.config.profiles } };
      case "time-slicing":
        return { mode: "time-slicing", replicas: this.config.replicas };
    }
  }
}
