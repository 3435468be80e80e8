/**
 * Starts the real agent process (`node bin/gpufabric.mjs agent`) on loopback with a config and
 * token files written for the test, and drives it over HTTP.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { IsolationSchema, ObservabilitySchema, type PlatformConfig, type RuntimeRule, type TenantConfig } from "../../../runtime/config/schema.ts";
import { generateToken } from "../../../runtime/security/identity/index.ts";
import { FileKeyring } from "../../../runtime/security/crypto/index.ts";
import { generateSigningKeyPair } from "../../../runtime/security/audit/index.ts";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = join(REPO_ROOT, "bin/gpufabric.mjs");

export interface TestDevice {
  readonly id: string;
  readonly node: string;
  readonly memoryMiB: number;
}

export interface TestPlatform {
  readonly dir: string;
  readonly configFile: string;
  readonly dataDir: string;
  /** A submitter token per tenant. */
  readonly tokens: Readonly<Record<string, string>>;
  readonly keyringDir: string;
  /** The checkpoint sink and the public key that verifies them. */
  readonly sinkDir: string;
  readonly publicKeyPath: string;
}

export const CONTACT_SHEET = parseYaml(readFileSync(join(REPO_ROOT, "examples/workflows/contact-sheet.yaml"), "utf8")) as Record<string, unknown>;

export function tenant(name: string, dataClassification: TenantConfig["dataClassification"] = "internal"): TenantConfig {
  return { name, weight: 1, gpuQuota: null, vramQuotaMiB: null, roles: [{ subject: "tester", role: "submitter" }], dataClassification, isolation: "shared" };
}

export const PHI_ISOLATION_RULE: RuntimeRule = {
  id: "hipaa/phi-isolated-gpu",
  description: "PHI workloads run only on GPUs no other tenant shares (exclusive or MIG)",
  tenantClassifications: ["phi"],
  require: { poolSharing: ["exclusive", "mig"] },
};

/** Writes a platform config and one submitter token per tenant into a fresh temporary folder. */
export function createPlatform(options: {
  readonly devices: readonly TestDevice[];
  readonly sharing?: PlatformConfig["pools"][number]["sharing"];
  readonly headroomMiB?: number;
  readonly preemption?: PlatformConfig["scheduler"]["preemption"];
  readonly tenants?: readonly TenantConfig[];
  readonly runtimeRules?: readonly RuntimeRule[];
  /** The stage sandbox's settings (default: the contract's defaults). */
  readonly isolation?: Partial<PlatformConfig["isolation"]>;
  /** ComfyUI servers for ComfyUI stages (null: they are simulated). */
  readonly comfyui?: PlatformConfig["comfyui"];
  /** Audit checkpoints every this many entries (default 1000). */
  readonly checkpointEvery?: number;
  /** Traces and the like (default: the contract's defaults, tracing off). */
  readonly observability?: { readonly tracing?: Partial<PlatformConfig["observability"]["tracing"]> };
}): TestPlatform {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-agent-test-"));
  const dataDir = join(dir, "data");
  const tokensDir = join(dir, "tokens");
  mkdirSync(tokensDir);
  // What WorkflowDeployment mounts: a keyring, the checkpoint signing key, the checkpoint sink.
  FileKeyring.create(join(dir, "keyring"));
  generateSigningKeyPair(join(dir, "audit-key"));
  mkdirSync(join(dir, "audit"));
  const tenants = options.tenants ?? [tenant("studio"), tenant("rival")];
  const tokens: Record<string, string> = {};
  for (const t of tenants) {
    const generated = generateToken("tester");
    writeFileSync(join(tokensDir, t.name), `${generated.line}\n`, { mode: 0o600 });
    tokens[t.name] = generated.token;
  }
  const memory = Math.max(...options.devices.map((d) => d.memoryMiB));
  const config: PlatformConfig = {
    version: 1,
    platform: { name: "test", region: "eu-central", zones: [] },
    deployment: {
      name: "test-agent",
      namespace: "gpu-work",
      pool: "local",
      tier: "warm",
      segment: "gpu-work",
      listen: { host: "127.0.0.1", port: 0 },
      dataDir,
      image: "gpufabric/agent:test",
    },
    pools: [
      {
        name: "local",
        gpu: { model: "L4-24GB", product: "NVIDIA-L4", memoryMiB: memory },
        nodes: new Set(options.devices.map((d) => d.node)).size,
        gpusPerNode: options.devices.length,
        sharing: options.sharing ?? { mode: "exclusive" },
        devices: options.devices.map((d, index) => ({ ...d, index })),
        nodeSelector: {},
        priorityClasses: { interactive: "interactive", batch: "batch" },
        tenantQuotas: {},
      },
    ],
    tiers: [
      {
        name: "warm",
        class: "warm",
        storageClassName: "warm",
        mountPath: join(dataDir, "tier"),
        retentionDays: null,
        encrypted: true,
        encryptionRequired: true,
        dataClassification: "internal",
      },
    ],
    segments: [{ name: "gpu-work", namespace: "gpu-work", defaultDenyIngress: true, defaultDenyEgress: true, allowedFrom: [], egressCidrs: [] }],
    tenants: [...tenants],
    workflows: [{ name: "contact-sheet", format: "native", priority: "batch", tenants: tenants.map((t) => t.name), document: CONTACT_SHEET }],
    scheduler: { headroomMiB: options.headroomMiB ?? 0, preemption: options.preemption ?? "stage-boundary", agingSeconds: 300 },
    security: {
      auth: { required: true, tokens: { secretName: "tokens", mountPath: tokensDir } },
      encryption: { atRest: true, algorithm: "AES-256-GCM", keyring: { secretName: "keyring", mountPath: join(dir, "keyring") } },
      audit: {
        signingKey: { secretName: "audit-key", mountPath: join(dir, "audit-key") },
        sink: { type: "volume", claimName: "audit", mountPath: join(dir, "audit") },
        checkpointEvery: options.checkpointEvery ?? 1000,
        checkpointIntervalSeconds: 300,
      },
      tls: { enabled: false },
    },
    isolation: IsolationSchema.parse(options.isolation ?? {}),
    cluster: null,
    comfyui: options.comfyui ?? null,
    observability: ObservabilitySchema.parse(options.observability ?? {}),
    runtimeRules: [...(options.runtimeRules ?? [])],
  };
  const configFile = join(dir, "platform.json");
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return { dir, configFile, dataDir, tokens, keyringDir: join(dir, "keyring"), sinkDir: join(dir, "audit"), publicKeyPath: join(dir, "audit-key", "public.pem") };
}

/** The agent's in-memory scratch folder for a data directory (see chooseScratch), where the machine has a tmpfs at /dev/shm. */
export function inMemoryScratchOf(dataDir: string): string {
  return join("/dev/shm", `gpufabric-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
}

/** Removes a test platform's folder and the agent's in-memory scratch folder. */
export function removePlatform(platform: TestPlatform): void {
  rmSync(platform.dir, { recursive: true, force: true });
  rmSync(inMemoryScratchOf(platform.dataDir), { recursive: true, force: true });
}

export interface AgentProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the agent wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would, then waits for the exit. */
  crash(): Promise<void>;
}

/** Starts the agent process and resolves once it logged its URL. */
export async function startAgentProcess(platform: TestPlatform, extraArgs: string[] = []): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      "agent",
      "--config",
      platform.configFile,
      "--data-dir",
      platform.dataDir,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--inventory",
      "simulated",
      ...extraArgs,
    ],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    }
  );
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start within 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /"url":"(https?:\/\/127\.0\.0\.1:\d+)"/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the agent exited (${code}) before it listened:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
    async crash() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

/** A JSON client for one agent and one token. */
export function client(url: string, token: string | undefined) {
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { ...(token && { authorization: `Bearer ${token}` }), ...(body !== undefined && { "content-type": "application/json" }), ...headers },
      ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
  return {
    get: (path: string, headers?: Record<string, string>) => request("GET", path, undefined, headers),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => request("POST", path, body, headers),
    raw: (path: string) => fetch(`${url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }),
    /** Polls a run until it reaches one of `statuses`. */
    async waitForRun(id: string, statuses: readonly string[] = ["succeeded", "failed", "cancelled"], timeoutMs = 120_000): Promise<any> {
      let last: ApiResponse | undefined;
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        last = await request("GET", `/v1/runs/${id}`);
        if (last.status === 200 && statuses.includes(last.body.status)) return last.body;
        await sleep(100);
      }
      throw new Error(`run ${id} did not reach ${statuses.join("/")} in ${timeoutMs} ms; last: ${JSON.stringify(last?.body)}`);
    },
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A native workflow of Node one-liners: each stage sleeps `ms`, then writes `<stage>.txt`. */
export function sleepyWorkflow(
  name: string,
  stages: ReadonlyArray<{ id: string; needs?: string[]; vram?: string; ms?: number; script?: string }>
): Record<string, unknown> {
  return {
    apiVersion: "gpufabric.dev/v1",
    kind: "Workflow",
    metadata: { name },
    spec: {
      stages: stages.map((s) => ({
        id: s.id,
        ...(s.needs && { needs: s.needs }),
        resources: { gpus: 1, vram: s.vram ?? "1Gi" },
        run: {
          command: [
            process.execPath,
            "-e",
            s.script ??
              `setTimeout(() => require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/${s.id}.txt", "${
                s.id
              } on " + process.env.CUDA_VISIBLE_DEVICES), ${s.ms ?? 500})`,
          ],
          timeoutSeconds: 120,
        },
        estimate: { durationSeconds: (s.ms ?? 500) / 1000 },
      })),
    },
  };
}
