/** Fixed facts of the agent image that every workload running it shares: paths, port, user. */
import { packageVersion } from "../../runtime/config/package.ts";

/** The agent image WorkflowDeployment runs unless told otherwise: the one built from this package's Dockerfile. */
export const DEFAULT_AGENT_IMAGE = `gpufabric/agent:${packageVersion()}`;

/** Where the agent finds what WorkflowDeployment mounts into its container. */
export const AGENT_PATHS = {
  config: "/etc/gpufabric",
  data: "/var/lib/gpufabric",
  keyring: "/var/run/secrets/gpufabric/keyring",
  tokens: "/var/run/secrets/gpufabric/tokens",
  auditSigning: "/var/run/secrets/gpufabric/audit-signing",
  tls: "/var/run/secrets/gpufabric/tls",
  clientCa: "/var/run/secrets/gpufabric/client-ca",
  auditSink: "/var/lib/gpufabric-audit",
  scratch: "/tmp",
  /** The runner's socket, in a volume only the agent's and the runner's containers mount. */
  runnerSocket: "/var/run/gpufabric-runner/runner.sock",
} as const;

/** The agent's HTTPS port inside the pod. */
export const AGENT_PORT = 8443;

/** The image's unprivileged user (and group); every container of the agent's pods runs as it. */
export const AGENT_UID = "10001";

