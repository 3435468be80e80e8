/**
 * WorkflowDeployment's `comfyui` option: the platform config's `comfyui` section (how ComfyUI prompts are
 * scheduled, and where their ComfyUI servers are), and with `image`, the ComfyUI server containers the
 * deployment runs itself.
 *
 * Why the servers hold GPUs of their own: Kubernetes hands a device to one container only (the device
 * plugin allocates per container, and two containers of a pod cannot be given the same GPU), so a server
 * container cannot share a GPU with the runner's or the worker's container. With `image`, every GPU of the
 * pod goes to a ComfyUI server, one each, requested as the runner would request its own (the pool's GPU
 * resource); the runner (single agent) or the worker (cluster) keeps none, and reads its GPUs from the
 * servers' /system_stats (runtime/agent/inventory/comfyui-servers.ts). A split (some GPUs to the servers,
 * the rest to the runner or worker) is refused: the agent schedules every stage on one set of GPUs and
 * cannot yet keep ComfyUI stages on the servers' and native stages on its own.
 * On a time-sliced or MIG pool a server gets one replica or instance, as the pool advertises them.
 * Server i listens on 127.0.0.1:(portRange.from + i), which the config's `portRange` names exactly; the
 * pod's containers share its network namespace, so the agent or worker reaches the servers on loopback,
 * and nothing else can: no port is declared and no Service selects them.
 */
import { ComfyUiSchema, type ComfyUiConfig } from "../../runtime/config/schema.ts";
import { tryParseQuantityMiB } from "../../runtime/graph/index.ts";
import type { PropIssues } from "../validation.ts";
import type { ContainerResources } from "./agent-container.ts";
import { Container } from "./container.ts";
import { AGENT_PORT, AGENT_UID } from "./paths.ts";
import { Volume } from "./volume.ts";

export interface ComfyUiServerProps {
  /** The GPU's id as the agent or worker names it (`<node>-g0`, …). */
  readonly gpu: string;
  /** The server's base URL, e.g. http://127.0.0.1:8188. */
  readonly url: string;
}

export interface ComfyUiModelsVolumeProps {
  /**
   * Where the image's ComfyUI looks for its models (its `models` folder), e.g. `/opt/ComfyUI/models`.
   * Mounted read-only.
   */
  readonly mountPath: string;
  /**
   * A PersistentVolumeClaim in the deployment's namespace holding the models. With `cluster` it is
   * mounted on every GPU node at once: give a claim that allows it (ReadOnlyMany or ReadWriteMany).
   * @default the models the stages see: the tier's models claim (single agent), or each worker's
   * node-local model cache (cluster)
   */
  readonly claimName?: string;
}

/** ComfyUI workers: ComfyUI prompts run on real ComfyUI servers, one pinned to each GPU. */
export interface ComfyUiProps {
  /**
   * How ComfyUI prompts are scheduled: their GPU-affine segments each on a GPU of its own, or the whole
   * prompt on one GPU (for graphs that must not be split). A workflow may choose otherwise.
   * @default "segmented"
   */
  readonly mode?: "segmented" | "whole-graph";
  /**
   * Container image of a ComfyUI server. The deployment then runs `gpus` server containers beside the
   * runner (single agent) or beside every worker (cluster), each holding one GPU, listening on loopback
   * only, non-root with a read-only root filesystem, and holding no Secret.
   * @default none: the agent or worker starts servers itself from `command`, or attaches to `servers`
   */
  readonly image?: string;
  /**
   * The argv that starts one ComfyUI server, with `{port}` for its port and `{gpu}` for its CUDA device.
   * With `image` it is the containers' command (`{gpu}` is 0: each container sees only its own GPU), and
   * the deployment adds the folders on its scratch volume (`--output-directory`, `--temp-directory`,
   * `--input-directory`, `--user-directory`) unless the argv names them. Without `image` the agent or
   * worker runs it in its own container, once per GPU.
   * @default with `image`: ["python", "main.py", "--listen", "127.0.0.1", "--port", "{port}", "--disable-auto-launch"]
   */
  readonly command?: readonly string[];
  /** The folder `command` starts in (ComfyUI's checkout). @default the image's working directory */
  readonly workingDir?: string;
  /** ComfyUI servers already running, one per GPU, to attach to. Not with `image` or `command`. @default none */
  readonly servers?: readonly ComfyUiServerProps[];
  /**
   * Loopback ports of the servers, one per GPU, from `from` on.
   * @default runtime/config's ComfyUiSchema (8190 to 8253); with `image`, exactly the ports the servers use
   */
  readonly portRange?: { readonly from: number; readonly to?: number };
  /** How long a server may take to answer after it starts (model folders are scanned then), in ms. @default 120000 */
  readonly startTimeoutMs?: number;
  /** Where the servers find their models, read-only. With `image` only. @default none: the image's own models folder */
  readonly modelsVolume?: ComfyUiModelsVolumeProps;
  /**
   * With `image`: how many of the pod's GPUs get a ComfyUI server. It must be all of them: a split, with
   * the rest left to the runner or worker, is refused (see the module's comment); give the deployment's
   * `gpus` instead.
   * @default all of them (single agent: `gpus`; cluster: the pool's gpusPerNode)
   */
  readonly gpus?: number;
  /**
   * CPU and memory of each server container (ComfyUI holds models in host memory as it moves them to
   * and from the GPU).
   * @default requests 1 CPU and 8Gi, limits 4 CPUs and 32Gi
   */
  readonly resources?: ContainerResources;
  /** Size of each server's scratch volume (its output, temp, input and user folders, and TMPDIR). @default "20Gi" */
  readonly scratchSize?: string;
}

/** Where each server container keeps what it writes: its scratch volume (the root filesystem is read-only). */
export const COMFYUI_SCRATCH = "/var/lib/comfyui";
const DEFAULT_IMAGE_COMMAND = ["python", "main.py", "--listen", "127.0.0.1", "--port", "{port}", "--disable-auto-launch"] as const;
const FOLDER_FLAGS = [
  ["--output-directory", "output"],
  ["--temp-directory", "temp"],
  ["--input-directory", "input"],
  ["--user-directory", "user"],
] as const;

/** Adds the problems of the `comfyui` option to `issues`, each under `comfyui.<field>`. */
export function validateComfyUi(
  issues: PropIssues,
  comfyui: ComfyUiProps,
  context: {
    readonly podGpus: number;
    readonly cluster: boolean;
    /** The GPUs each stage of the native workflows needs: they run in the runner or worker, on the GPUs left to it. */
    readonly nativeStages: readonly { readonly workflow: string; readonly stage: string; readonly gpus: number }[];
  },
): void {
  const { image, command, servers, gpus, portRange, modelsVolume } = comfyui;
  if (image !== undefined) {
    if (typeof image !== "string" || image.trim() === "") issues.add("comfyui.image", `${JSON.stringify(image)} is not an image reference: give e.g. "studio/comfyui:v0.3.60"`);
    if (servers !== undefined) issues.add("comfyui.servers", "does not apply with image: the deployment runs the servers itself; drop servers, or drop image to attach to running servers");
    if (gpus !== undefined && issues.positiveInt("comfyui.gpus", gpus) && gpus > context.podGpus) {
      issues.add("comfyui.gpus", `${gpus} servers need ${gpus} GPUs but the ${context.cluster ? "worker's node has" : "agent pod requests"} ${context.podGpus}: use at most ${context.podGpus}`);
    } else if (gpus !== undefined && Number.isInteger(gpus) && gpus > 0 && gpus < context.podGpus) {
      // The agent or worker could not tell its own GPUs from the servers': it schedules every stage on one set.
      issues.add(
        "comfyui.gpus",
        `${gpus} of the ${context.podGpus} GPUs the ${context.cluster ? "worker's node has" : "agent pod requests"} would leave ${context.podGpus - gpus} to the ${context.cluster ? "worker" : "runner"}, and such a split is not supported (the agent schedules ComfyUI and native stages on one set of GPUs and cannot keep each on its own containers' GPUs): ` +
          (context.cluster ? "drop comfyui.gpus (every GPU of the node gets a server), or use a pool with that many GPUs per node" : `drop comfyui.gpus and request ${gpus} GPU(s) for the deployment (gpus: ${gpus})`),
      );
    }
    const servedGpus = gpus ?? context.podGpus;
    const left = context.podGpus - servedGpus;
    const hungriest = [...context.nativeStages].sort((a, b) => b.gpus - a.gpus)[0];
    if (hungriest !== undefined && hungriest.gpus > 0 && left === 0) {
      issues.add(
        gpus === undefined ? "comfyui.gpus (defaults to all of the pod's GPUs)" : "comfyui.gpus",
        `leaves the ${context.cluster ? "worker" : "runner"} ${left} GPU(s), but stage '${hungriest.stage}' of workflow '${hungriest.workflow}' needs ${hungriest.gpus}: with image every GPU of the pod goes to a ComfyUI server, so run that workflow on another deployment`,
      );
    }
    if (portRange?.to !== undefined && Number.isInteger(portRange.from) && Number.isInteger(portRange.to) && portRange.to - portRange.from + 1 < servedGpus) {
      issues.add("comfyui.portRange", `${portRange.from}-${portRange.to} holds ${Math.max(0, portRange.to - portRange.from + 1)} port(s) for ${servedGpus} servers: widen it, or drop 'to' (the deployment takes one port per server from 'from')`);
    }
    if (Number.isInteger(portRange?.from) && portRange!.from <= AGENT_PORT && AGENT_PORT < portRange!.from + servedGpus) {
      issues.add("comfyui.portRange", `ports ${portRange!.from}-${portRange!.from + servedGpus - 1} include ${AGENT_PORT}, the agent's own port in the pod: start the range elsewhere, e.g. 8190`);
    }
    if (modelsVolume !== undefined) {
      if (typeof modelsVolume.mountPath !== "string" || !modelsVolume.mountPath.startsWith("/") || modelsVolume.mountPath.startsWith(COMFYUI_SCRATCH)) {
        issues.add("comfyui.modelsVolume.mountPath", `${JSON.stringify(modelsVolume.mountPath)} must be an absolute path outside ${COMFYUI_SCRATCH}: where the image's ComfyUI looks for models, e.g. "/opt/ComfyUI/models"`);
      }
      if (modelsVolume.claimName !== undefined) issues.dnsLabel("comfyui.modelsVolume.claimName", modelsVolume.claimName);
    }
    if (comfyui.scratchSize !== undefined) {
      const parsed = tryParseQuantityMiB(comfyui.scratchSize);
      if (!parsed.ok) issues.add("comfyui.scratchSize", parsed.message);
    }
  } else {
    for (const field of ["gpus", "modelsVolume", "resources", "scratchSize"] as const) {
      if (comfyui[field] !== undefined) issues.add(`comfyui.${field}`, `applies only with image (the servers the deployment runs): drop ${field}, or give the ComfyUI image`);
    }
    if (command === undefined && servers === undefined) {
      issues.add("comfyui", "names no ComfyUI server: give image (the deployment runs a server per GPU), command (the agent or worker starts one per GPU) or servers (attach to running ones)");
    }
  }
  if (command !== undefined && (!Array.isArray(command) || !command.some((a) => typeof a === "string" && a.includes("{port}")))) {
    issues.add("comfyui.command", `must pass the server its port: put '{port}' in an argument, e.g. ${JSON.stringify(DEFAULT_IMAGE_COMMAND)}`);
  }
  // The runtime's own rules for what is left (modes, URLs, port and timeout bounds): refused here, not when the agent starts.
  const parsed = ComfyUiSchema.safeParse(configShape(comfyui, Math.max(1, comfyui.gpus ?? context.podGpus), undefined));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = ["comfyui", ...issue.path.map(String)].join(".");
      if ((issue.path[0] === "command" && issue.code === "custom") || issue.path[0] === "image") continue; // reported above, with the fix
      issues.add(field, issue.message);
    }
  }
}

/**
 * How long the single agent may take to start with `image`, in seconds: it reads its GPUs from the
 * servers before it listens, waiting up to their startTimeoutMs, plus a minute for its own start.
 */
export function comfyUiStartWithinS(comfyui: ComfyUiProps | undefined): number {
  return Math.ceil((comfyui?.startTimeoutMs ?? 120_000) / 1000) + 60;
}

/** The platform config's `comfyui` section. `servedGpus`: the servers the deployment runs (with `image`). */
export function comfyUiConfig(comfyui: ComfyUiProps, servedGpus: number, modelsClaim: string | undefined): ComfyUiConfig {
  return ComfyUiSchema.parse(configShape(comfyui, servedGpus, modelsClaim));
}

function configShape(comfyui: ComfyUiProps, servedGpus: number, modelsClaim: string | undefined): Record<string, unknown> {
  const { image, portRange } = comfyui;
  const from = portRange?.from;
  return {
    ...(comfyui.mode !== undefined ? { mode: comfyui.mode } : {}),
    ...(image !== undefined
      ? {
          // The deployment runs the servers: the config tells the agent or worker where they are, not how to start them.
          image,
          portRange: { from: from ?? 8190, to: (from ?? 8190) + servedGpus - 1 },
          ...(modelsClaim !== undefined && comfyui.modelsVolume !== undefined ? { modelsVolume: { claimName: modelsClaim, mountPath: comfyui.modelsVolume.mountPath } } : {}),
        }
      : {
          ...(comfyui.command !== undefined ? { command: [...comfyui.command] } : {}),
          ...(comfyui.workingDir !== undefined ? { workingDir: comfyui.workingDir } : {}),
          ...(comfyui.servers !== undefined ? { servers: comfyui.servers.map((s) => ({ gpu: s.gpu, url: s.url })) } : {}),
          ...(portRange !== undefined ? { portRange: { from: portRange.from, to: portRange.to ?? portRange.from + 63 } } : {}),
        }),
    ...(comfyui.startTimeoutMs !== undefined ? { startTimeoutMs: comfyui.startTimeoutMs } : {}),
  };
}

/**
 * The server containers: one per served GPU, each with that GPU alone, its own scratch volume (output,
 * temp, input and user folders, TMPDIR and HOME: the root filesystem is read-only), the models read-only,
 * and no Secret (custom nodes run arbitrary code). A server that exits is restarted by the kubelet.
 */
export function comfyUiContainers(props: {
  readonly comfyui: ComfyUiProps & { readonly image: string };
  readonly servedGpus: number;
  readonly gpuResource: string;
  /** The volume the models are read from, when there is one. */
  readonly models: Volume | undefined;
}): Container[] {
  const { comfyui } = props;
  const r = comfyui.resources ?? {};
  const from = comfyui.portRange?.from ?? 8190;
  const gpu = { [props.gpuResource]: "1" };
  return Array.from({ length: props.servedGpus }, (_, i) => {
    const port = String(from + i);
    const scratch = Volume.fromEmptyDir(`comfyui-${i}-scratch`, { sizeLimit: comfyui.scratchSize ?? "20Gi" });
    const argv = (comfyui.command ?? DEFAULT_IMAGE_COMMAND).map((a) => a.replaceAll("{port}", port).replaceAll("{gpu}", "0"));
    const folders = FOLDER_FLAGS.filter(([flag]) => !argv.includes(flag)).flatMap(([flag, dir]) => [flag, `${COMFYUI_SCRATCH}/${dir}`]);
    const container = new Container({
      name: `comfyui-${i}`,
      image: comfyui.image,
      uid: AGENT_UID,
      command: [...argv, ...folders],
      args: [],
      ...(comfyui.workingDir !== undefined ? { workingDir: comfyui.workingDir } : {}),
      // The scratch volume's root exists from the start; a folder under it would not, and Python's tempfile would fall back to the read-only /tmp.
      env: { HOME: COMFYUI_SCRATCH, TMPDIR: COMFYUI_SCRATCH, PYTHONDONTWRITEBYTECODE: "1" },
      resources: {
        requests: { cpu: r.cpuRequest ?? "1", memory: r.memoryRequest ?? "8Gi", ...gpu },
        limits: { cpu: r.cpuLimit ?? "4", memory: r.memoryLimit ?? "32Gi", ...gpu },
      },
      secretFree: true,
    }).mount(COMFYUI_SCRATCH, scratch);
    if (props.models !== undefined && comfyui.modelsVolume !== undefined) container.mount(comfyui.modelsVolume.mountPath, props.models, { readOnly: true });
    return container;
  });
}
