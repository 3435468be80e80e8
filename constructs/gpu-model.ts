import { PropIssues } from "./validation.ts";

/** One MIG GPU-instance profile of a model, e.g. `3g.40gb`. */
export interface MigProfile {
  /** Compute slices (of 7) the instance takes: the number before `g`. */
  readonly computeSlices: number;
  /** Memory the instance offers, in MiB. */
  readonly memoryMiB: number;
  /**
   * Memory slices (of 8) the instance takes; used to reject layouts that do not fit.
   * @default not checked
   */
  readonly memorySlices?: number;
}

export interface CustomGpuModelProps {
  /** gpufabric's name for the model, e.g. `B200-180GB`. */
  readonly name: string;
  /** The `nvidia.com/gpu.product` label GPU Feature Discovery sets on its nodes, e.g. `NVIDIA-B200`. */
  readonly product: string;
  /** Memory per GPU in MiB, as `nvidia-smi --query-gpu=memory.total` reports it. */
  readonly memoryMiB: number;
  /**
   * MIG profiles the model supports, by profile name.
   * @default {} (no MIG)
   */
  readonly migProfiles?: Readonly<Record<string, MigProfile>>;
}

/** MIG partitions one GPU into at most this many compute slices… */
export const MIG_COMPUTE_SLICES = 7;
/** …and at most this many memory slices. */
export const MIG_MEMORY_SLICES = 8;

const MIG_PROFILE_NAME = /^(\d+)g\.\d+gb$/;

/**
 * A GPU model: its GPU Feature Discovery product label, its memory and its MIG profiles.
 * Memory is MiB as `nvidia-smi --query-gpu=memory.total` reports it; a MIG instance's memory is what
 * `nvidia-smi mig -lgip` lists (GiB to two decimals, rounded down to the MiB), which is less than the
 * profile name's nominal size.
 */
export class GpuModel {
  static readonly H100_80GB = new GpuModel("H100-80GB", "NVIDIA-H100-80GB-HBM3", 81559, {
    "1g.10gb": { computeSlices: 1, memorySlices: 1, memoryMiB: 9984 },
    "1g.20gb": { computeSlices: 1, memorySlices: 2, memoryMiB: 20090 },
    "2g.20gb": { computeSlices: 2, memorySlices: 2, memoryMiB: 20090 },
    "3g.40gb": { computeSlices: 3, memorySlices: 4, memoryMiB: 40448 },
    "4g.40gb": { computeSlices: 4, memorySlices: 4, memoryMiB: 40448 },
    "7g.80gb": { computeSlices: 7, memorySlices: 8, memoryMiB: 81152 },
  });

  static readonly H200_141GB = new GpuModel("H200-141GB", "NVIDIA-H200", 143771, {
    "1g.18gb": { computeSlices: 1, memorySlices: 1, memoryMiB: 16384 },
    "1g.35gb": { computeSlices: 1, memorySlices: 2, memoryMiB: 33280 },
    "2g.35gb": { computeSlices: 2, memorySlices: 2, memoryMiB: 33280 },
    "3g.71gb": { computeSlices: 3, memorySlices: 4, memoryMiB: 71424 },
    "4g.71gb": { computeSlices: 4, memorySlices: 4, memoryMiB: 71424 },
    "7g.141gb": { computeSlices: 7, memorySlices: 8, memoryMiB: 143360 },
  });

  static readonly A100_40GB = new GpuModel("A100-40GB", "NVIDIA-A100-SXM4-40GB", 40960, {
    "1g.5gb": { computeSlices: 1, memorySlices: 1, memoryMiB: 4864 },
    "1g.10gb": { computeSlices: 1, memorySlices: 2, memoryMiB: 9984 },
    "2g.10gb": { computeSlices: 2, memorySlices: 2, memoryMiB: 9984 },
    "3g.20gb": { computeSlices: 3, memorySlices: 4, memoryMiB: 20090 },
    "4g.20gb": { computeSlices: 4, memorySlices: 4, memoryMiB: 20090 },
    "7g.40gb": { computeSlices: 7, memorySlices: 8, memoryMiB: 40448 },
  });

  static readonly A100_80GB = new GpuModel("A100-80GB", "NVIDIA-A100-SXM4-80GB", 81920, {
    "1g.10gb": { computeSlices: 1, memorySlices: 1, memoryMiB: 9728 },
    "1g.20gb": { computeSlices: 1, memorySlices: 2, memoryMiB: 19968 },
    "2g.20gb": { computeSlices: 2, memorySlices: 2, memoryMiB: 19968 },
    "3g.40gb": { computeSlices: 3, memorySlices: 4, memoryMiB: 40192 },
    "4g.40gb": { computeSlices: 4, memorySlices: 4, memoryMiB: 40192 },
    "7g.80gb": { computeSlices: 7, memorySlices: 8, memoryMiB: 80896 },
  });

  static readonly L40S_48GB = new GpuModel("L40S-48GB", "NVIDIA-L40S", 46068, {});
  static readonly A10G_24GB = new GpuModel("A10G-24GB", "NVIDIA-A10G", 23028, {});
  static readonly L4_24GB = new GpuModel("L4-24GB", "NVIDIA-L4", 23034, {});

  /** The built-in models, by name. */
  static builtIn(): readonly GpuModel[] {
    return [GpuModel.H100_80GB, GpuModel.H200_141GB, GpuModel.A100_40GB, GpuModel.A100_80GB, GpuModel.L40S_48GB, GpuModel.A10G_24GB, GpuModel.L4_24GB];
  }

  /** A model gpufabric does not know; validated like the built-in ones. */
  static custom(props: CustomGpuModelProps): GpuModel {
    const issues = new PropIssues(`GpuModel.custom(${JSON.stringify(props.name)})`);
    if (typeof props.name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(props.name)) {
      issues.add("name", `${JSON.stringify(props.name)} is not a model name: use letters, digits, '.', '_' or '-', e.g. 'B200-180GB'`);
    }
    if (typeof props.product !== "string" || !/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(props.product)) {
      issues.add(
        "product",
        `${JSON.stringify(props.product)} is not a label value: give the nvidia.com/gpu.product value GPU Feature Discovery sets (see 'kubectl get node -L nvidia.com/gpu.product'), e.g. 'NVIDIA-B200'`,
      );
    }
    issues.positiveInt("memoryMiB", props.memoryMiB);
    for (const [profile, spec] of Object.entries(props.migProfiles ?? {})) {
      const field = `migProfiles[${JSON.stringify(profile)}]`;
      const match = MIG_PROFILE_NAME.exec(profile);
      if (!match) {
        issues.add(field, `'${profile}' is not a MIG profile name: write '<compute slices>g.<memory>gb', e.g. '3g.40gb'`);
        continue;
      }
      if (issues.positiveInt(`${field}.computeSlices`, spec.computeSlices)) {
        if (spec.computeSlices > MIG_COMPUTE_SLICES) issues.add(`${field}.computeSlices`, `${spec.computeSlices} exceeds the ${MIG_COMPUTE_SLICES} compute slices of a GPU`);
        else if (spec.computeSlices !== Number(match[1])) issues.add(`${field}.computeSlices`, `is ${spec.computeSlices} but the profile name says ${match[1]}: make them agree`);
      }
      if (issues.positiveInt(`${field}.memoryMiB`, spec.memoryMiB) && typeof props.memoryMiB === "number" && spec.memoryMiB > props.memoryMiB) {
        issues.add(`${field}.memoryMiB`, `${spec.memoryMiB} MiB exceeds the model's ${props.memoryMiB} MiB: a MIG instance holds part of the GPU's memory`);
      }
      if (spec.memorySlices !== undefined && issues.positiveInt(`${field}.memorySlices`, spec.memorySlices) && spec.memorySlices > MIG_MEMORY_SLICES) {
        issues.add(`${field}.memorySlices`, `${spec.memorySlices} exceeds the ${MIG_MEMORY_SLICES} memory slices of a GPU`);
      }
    }
    issues.throwIfAny();
    return new GpuModel(props.name, props.product, props.memoryMiB, props.migProfiles ?? {});
  }

  /** MIG profiles by name; empty when the model has no MIG. */
  readonly migProfiles: ReadonlyMap<string, MigProfile>;

  private constructor(
    /** gpufabric's model name, e.g. `H100-80GB`. */
    readonly name: string,
    /** The `nvidia.com/gpu.product` value GPU Feature Discovery sets. */
    readonly product: string,
    /** Memory per GPU in MiB. */
    readonly memoryMiB: number,
    profiles: Readonly<Record<string, MigProfile>>,
  ) {
    this.migProfiles = new Map(Object.entries(profiles).map(([k, v]) => [k, Object.freeze({ ...v })]));
  }

  get supportsMig(): boolean {
    return this.migProfiles.size > 0;
  }

  toString(): string {
    return this.name;
  }
}
