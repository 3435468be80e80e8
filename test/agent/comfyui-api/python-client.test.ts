/**
 * Done-when of the ComfyUI-compatible API, with real clients: a Python client written like ComfyUI's
 * websockets_api_example.py (urllib and websocket-client, from Debian's python3-websocket) queues a
 * prompt, follows /ws to the final `executing`, and reads its history and images through /view: first
 * against the agent with its token, then through `gpufabric comfyui proxy` with no credentials at all.
 * The stages run on stand-in ComfyUI servers (test/support): ComfyUI itself cannot be installed here.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startComfyStandin, type ComfyStandin } from "../../support/comfyui-standin.ts";
import { createPlatform, REPO_ROOT, removePlatform, startAgentProcess, tenant, type AgentProcess, type TestPlatform } from "../service/harness.ts";
import { examplePrompt } from "./prompts.ts";

const PYTHON = "/usr/bin/python3";
const CLIENT = join(REPO_ROOT, "test/agent/comfyui-api/websockets_api_client.py");
const hasWebsocketClient = spawnSync(PYTHON, ["-c", "import websocket"]).status === 0;
if (!hasWebsocketClient) console.warn("skipping the Python ComfyUI client test: Debian's python3-websocket is not installed (.ci/run installs it)");

interface ClientSummary {
  prompt_id: string;
  queued: { prompt_id: string; number: number; node_errors: Record<string, unknown> };
  messages: string[];
  status: string;
  images: Record<string, Array<{ bytes: number; png: boolean; sha256: string }>>;
}

function runClient(address: string, promptFile: string, token?: string): Promise<ClientSummary> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.GPUFABRIC_TOKEN;
    if (token !== undefined) env.GPUFABRIC_TOKEN = token;
    const child = spawn(PYTHON, [CLIENT, address, promptFile], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`the Python client exited ${code}:\n${err}${out}`));
      else resolve(JSON.parse(out) as ClientSummary);
    });
  });
}

describe.skipIf(!hasWebsocketClient)("a Python ComfyUI client, unchanged but for its server address", () => {
  let standins: ComfyStandin[] = [];
  let platform: TestPlatform;
  let agent: AgentProcess;
  let promptFile: string;

  beforeAll(async () => {
    const models = { checkpoints: ["v1-5-pruned-emaonly.safetensors"], upscale_models: ["4x-UltraSharp.pth"] };
    standins = await Promise.all([startComfyStandin({ models, nodeDelayMs: 5 }), startComfyStandin({ models, nodeDelayMs: 5 })]);
    platform = createPlatform({
      devices: [{ id: "gpu0", node: "n1", memoryMiB: 81_920 }, { id: "gpu1", node: "n1", memoryMiB: 81_920 }],
      tenants: [tenant("studio")],
      comfyui: {
        mode: "segmented",
        servers: standins.map((s, i) => ({ gpu: `gpu${i}`, url: s.url })),
        portRange: { from: 8190, to: 8253 },
        startTimeoutMs: 10_000,
      },
    });
    agent = await startAgentProcess(platform);
    promptFile = join(platform.dir, "prompt.json");
    writeFileSync(promptFile, JSON.stringify(examplePrompt(42)));
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all(standins.map((s) => s.close()));
    if (platform) removePlatform(platform);
  });

  const expectImages = (summary: ClientSummary) => {
    expect(summary.status).toBe("success");
    expect(summary.queued.prompt_id).toBe(summary.prompt_id);
    expect(summary.messages).toContain("execution_start");
    expect(summary.messages).toContain("execution_success");
    expect(summary.images["9"]).toHaveLength(1);
    expect(summary.images["9"]![0]).toMatchObject({ png: true });
    expect(summary.images["9"]![0]!.bytes).toBeGreaterThan(60);
  };

  it("against the agent, with its token", async () => {
    const address = `${agent.url.replace(/^http:\/\//, "")}/comfyui`;
    expectImages(await runClient(address, promptFile, platform.tokens.studio!));
    // The prompt really ran on a ComfyUI server: the stand-ins saw it.
    expect(standins.flatMap((s) => s.prompts()).length).toBeGreaterThan(0);
  }, 90_000);

  it("through `gpufabric comfyui proxy`, with no credentials in the client", async () => {
    const tokenFile = join(platform.dir, "comfy-token");
    writeFileSync(tokenFile, `${platform.tokens.studio}\n`, { mode: 0o600 });
    const proxy = spawn(process.execPath, [join(REPO_ROOT, "bin/gpufabric.mjs"), "comfyui", "proxy", "--agent", agent.url, "--token-file", tokenFile, "--port", "0"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`the proxy did not start:\n${out}`)), 30_000);
        const onData = (c: Buffer) => {
          out += c.toString();
          const m = /served at (http:\/\/[^\s]+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        };
        proxy.stdout.on("data", onData);
        proxy.stderr.on("data", onData);
      });
      const summary = await runClient(url.replace(/^http:\/\//, "").replace(/\/$/, ""), promptFile);
      expectImages(summary);
    } finally {
      proxy.kill("SIGTERM");
    }
  }, 90_000);
});
