/** The GPUs an agent runs stages on, as discovered on its node or declared by its pool. */

interface GpuDeviceBase {
  /** Stable id within the agent: `<node>-g<index>`, `…-mig<n>` for a MIG instance, or the pool's device id. */
  readonly id: string;
  readonly node: string;
  /** Index of the physical GPU on its node. */
  readonly index: number;
  /** Product name, e.g. `NVIDIA H100 80GB HBM3`. */
  readonly name: string;
  readonly memoryMiB: number;
  readonly memoryUsedMiB: number;
  /** MIG profile, e.g. `3g.40gb`, when the device is a MIG instance. */
  readonly migProfile?: string;
}

/** A device nvidia-smi reported on this node. */
export interface RealGpuDevice extends GpuDeviceBase {
  /** `GPU-…` or `MIG-…`: what CUDA_VISIBLE_DEVICES takes. */
  readonly uuid: string;
  readonly simulated: false;
}

/** A device the pool declares, standing in where no GPU is present; no real work runs on it. */
export interface SimulatedGpuDevice extends GpuDeviceBase {
  /** Simulated devices have no UUID: they never pass for real ones. */
  readonly uuid: null;
  readonly simulated: true;
}

/**
 * A real GPU held by a ComfyUI server container beside this one (`comfyui.image`): Kubernetes gives a
 * device to one container only, so only that server can use it, and the server names no UUID. ComfyUI
 * stages run on it for real; a process stage cannot (its container does not see the GPU).
 */
export interface ComfyUiHeldGpuDevice extends GpuDeviceBase {
  readonly uuid: null;
  readonly simulated: false;
  readonly heldBy: "comfyui";
}

export type GpuDevice = RealGpuDevice | SimulatedGpuDevice | ComfyUiHeldGpuDevice;

/** The node's GPUs could not be read where they should have been. */
export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InventoryError";
  }
}

/** What a stage's process sees as its devices: UUIDs of real GPUs, ids of simulated ones. */
export function visibleDeviceId(device: Pick<GpuDevice, "id" | "uuid">): string {
  return device.uuid ?? device.id;
}

/** Reads the VRAM a running stage holds, for its peak-VRAM record. */
export interface VramSampler {
  /**
   * MiB in use on the busiest of the given GPUs, attributed to the process group when nvidia-smi's
   * pids can be matched to it, otherwise the GPUs' whole usage; undefined when nothing can be read.
   */
  sample(gpuUuids: readonly string[], processGroupId: number): Promise<number | undefined>;
}
