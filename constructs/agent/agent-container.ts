/**
 * The agent's container: API, scheduler, sealing and audit. It holds the agent's Secrets, its store and
 * its audit sink, and never runs a stage: those go to a container that holds no Secret (runner-container.ts).
 */
import { dirname } from "node:path";
import { CONFIG_MAP_KEY } from "../../runtime/config/index.ts";
import { Container } from "./container.ts";
import { AGENT_PATHS, AGENT_PORT, AGENT_UID } from "./paths.ts";
import type { AgentVolumes } from "./volumes.ts";

export interface ContainerResources {
  readonly cpuRequest?: string;
  readonly cpuLimit?: string;
  readonly memoryRequest?: string;
  readonly memoryLimit?: string;
}

export interface AgentContainerProps {
  readonly image: string;
  /** @default requests 1 CPU and 2Gi, limits 4 CPUs and 8Gi */
  readonly resources?: ContainerResources;
  readonly volumes: AgentVolumes;
  /** Where the storage tier's claims are mounted. */
  readonly tierMountPath: string;
  /**
   * How long the agent may take to start, in seconds, when that can be long: with comfyui.image it waits
   * for the ComfyUI servers beside it (up to their startTimeoutMs) before it listens, and the liveness
   * probe must not kill it meanwhile. @default no startup probe
   */
  readonly startWithinS?: number;
}

/**
 * What the single agent's container and a cluster's control-plane container share: the entry point, the
 * API port and probes, CPU and memory, and the Secrets (config, keyring, tokens, signing key, TLS).
 * `env` comes after the shared variables; the caller mounts its own volumes after these.
 */
export function agentLikeContainer(props: {
  readonly image: string;
  readonly startWithinS?: number;
  readonly resources?: ContainerResources;
  readonly volumes: Pick<AgentVolumes, "config" | "keyring" | "tokens" | "auditSigning" | "tls" | "clientCa">;
  readonly env?: ConstructorParameters<typeof Container>[0]["env"];
}): Container {
  const resources = props.resources ?? {};
  const probe = (path: string, period: number) => ({
    httpGet: { path, port: String(AGENT_PORT), scheme: "HTTPS" },
    periodSeconds: period,
    timeoutSeconds: 5,
    failureThreshold: 3,
  });
  const v = props.volumes;
  const container = new Container({
    name: "agent",
    image: props.image,
    uid: AGENT_UID,
    args: ["agent", "--config", `${AGENT_PATHS.config}/${CONFIG_MAP_KEY}`],
    ports: [{ name: "https", containerPort: AGENT_PORT, protocol: "TCP" }],
    env: {
      GPUFABRIC_DATA_DIR: AGENT_PATHS.data,
      // Stage workspaces (plaintext until sealed) on the memory-backed scratch volume, not /dev/shm's 64 MiB.
      GPUFABRIC_SCRATCH_DIR: `${AGENT_PATHS.scratch}/gpufabric-scratch`,
      NODE_ENV: "production",
      ...props.env,
    },
    // No GPUs: they go to the container where stages run (the runner's, or a cluster's workers).
    resources: {
      requests: { cpu: resources.cpuRequest ?? "1", memory: resources.memoryRequest ?? "2Gi" },
      limits: { cpu: resources.cpuLimit ?? "4", memory: resources.memoryLimit ?? "8Gi" },
    },
    livenessProbe: probe("/healthz", 10),
    readinessProbe: probe("/readyz", 5),
    ...(props.startWithinS !== undefined && { startupProbe: { ...probe("/healthz", 5), failureThreshold: Math.ceil(props.startWithinS / 5) } }),
  });
  container
    .mount(AGENT_PATHS.config, v.config, { readOnly: true })
    .mount(AGENT_PATHS.keyring, v.keyring)
    .mount(AGENT_PATHS.tokens, v.tokens)
    .mount(AGENT_PATHS.auditSigning, v.auditSigning)
    .mount(AGENT_PATHS.tls, v.tls);
  if (v.clientCa) container.mount(AGENT_PATHS.clientCa, v.clientCa);
  return container;
}

export function agentContainer(props: AgentContainerProps): Container {
  const v = props.volumes;
  return agentLikeContainer(props)
    .mount(AGENT_PATHS.data, v.state)
    .mount(AGENT_PATHS.auditSink, v.auditSink)
    .mount(`${props.tierMountPath}/models`, v.models)
    .mount(`${props.tierMountPath}/artifacts`, v.artifacts)
    .mount(AGENT_PATHS.scratch, v.scratch)
    .mount(dirname(AGENT_PATHS.runnerSocket), v.runnerSocket);
}
