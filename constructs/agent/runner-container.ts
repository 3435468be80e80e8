/**
 * The runner's container, where stages run (`gpufabric runner --socket …`): it holds the GPUs and mounts
 * no Secret, no config, no store and no audit sink; only the workspaces, the model cache read-only and
 * the socket the agent starts stages through. `secretFree` makes mounting a Secret here an error.
 */
import { dirname } from "node:path";
import { Container } from "./container.ts";
import type { ContainerResources } from "./agent-container.ts";
import { AGENT_PATHS, AGENT_UID } from "./paths.ts";
import type { AgentVolumes } from "./volumes.ts";

export interface RunnerContainerProps {
  readonly image: string;
  /** @default requests 2 CPUs and 8Gi, limits 8 CPUs and 32Gi */
  readonly resources?: ContainerResources;
  /** The extended resource the GPUs are requested by, e.g. `nvidia.com/gpu`. */
  readonly gpuResource: string;
  readonly gpus: number;
  readonly volumes: Pick<AgentVolumes, "scratch" | "models" | "runnerSocket">;
  /** Where the storage tier's claims are mounted. */
  readonly tierMountPath: string;
}

export function runnerContainer(props: RunnerContainerProps): Container {
  const r = props.resources ?? {};
  // None when the pod's GPUs all went to ComfyUI server containers (a device is given to one container only).
  const gpus = props.gpus > 0 ? { [props.gpuResource]: String(props.gpus) } : {};
  return new Container({
    name: "runner",
    image: props.image,
    uid: AGENT_UID,
    args: ["runner", "--socket", AGENT_PATHS.runnerSocket],
    env: { NODE_ENV: "production" },
    resources: {
      requests: { cpu: r.cpuRequest ?? "2", memory: r.memoryRequest ?? "8Gi", ...gpus },
      limits: { cpu: r.cpuLimit ?? "8", memory: r.memoryLimit ?? "32Gi", ...gpus },
    },
    secretFree: true,
  })
    .mount(AGENT_PATHS.scratch, props.volumes.scratch)
    .mount(`${props.tierMountPath}/models`, props.volumes.models, { readOnly: true })
    .mount(dirname(AGENT_PATHS.runnerSocket), props.volumes.runnerSocket);
}
