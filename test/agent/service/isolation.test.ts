/**
 * The adversarial stage: tenant studio's stage tries to read every secret of the agent, another
 * tenant's workspace and sealed artifacts, the agent's /proc entries; to signal the agent; and to open
 * a connection when egress is not allowed. Under the sandbox every try fails. The same stage under
 * --unsafe-shared-identity (what every stage was before the sandbox) succeeds at them, which shows the
 * test can fail.
 */
import { join, dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { probeSandbox } from "../../../runtime/agent/sandbox/index.ts";
import { IsolationSchema } from "../../../runtime/config/schema.ts";
import { useAgent } from "./agent-fixture.ts";
import { REPO_ROOT, client, inMemoryScratchOf, tenant, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const ADVERSARY = join(REPO_ROOT, "test/agent/fixtures/adversarial-stage.mjs");
const HOLDER = join(REPO_ROOT, "test/agent/fixtures/holder-stage.mjs");

interface Try {
  what: string;
  ok: boolean;
  error?: string;
  detail?: string;
}

const stage = (id: string, command: string[], env: Record<string, string> = {}, extra: Record<string, unknown> = {}) => ({
  id,
  resources: { gpus: 0 },
  run: { command, env, timeoutSeconds: 60, ...extra },
});
const workflow = (name: string, stages: unknown[]) => ({ apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name }, spec: { stages } });

/** Whether this machine can run the sandbox at all (bwrap installed, namespaces allowed). */
const sandboxWorks = await (async () => {
  const probe = await probeSandbox({ isolation: IsolationSchema.parse({}), tenants: ["t"], protectedPaths: [], scratchDir: "/tmp" });
  if (!probe.ok) console.warn(`stage sandbox tests skipped: ${probe.reason}`);
  return probe.ok;
})();

async function attack(platform: TestPlatform, agent: AgentProcess): Promise<{ tries: Try[]; rivalRun: string }> {
  const studio = client(agent.url, platform.tokens.studio!);
  const rival = client(agent.url, platform.tokens.rival!);
  // The rival's sealed artifacts, and a rival stage holding its workspace while the attack runs.
  const done = await rival.post("/v1/runs", { workflow: workflow("rival-done", [stage("hold", [process.execPath, HOLDER, "0"])]) });
  expect(done.status).toBe(202);
  expect((await rival.waitForRun(done.body.id)).status).toBe("succeeded");
  const holding = await rival.post("/v1/runs", { workflow: workflow("rival-live", [stage("hold", [process.execPath, HOLDER, "20000"])]) });
  await rival.waitForRun(holding.body.id, ["running"]);
  const scratch = inMemoryScratchOf(platform.dataDir);
  const dir = dirname(platform.configFile);
  const targets = [
    join(platform.keyringDir, "current"),
    join(platform.keyringDir, "v1"),
    platform.keyringDir,
    join(dir, "audit-key", "private.pem"),
    join(dir, "tokens", "studio"),
    join(dir, "tokens", "rival"),
    join(platform.dataDir, "agent.db"),
    join(platform.dataDir, "audit", "log.jsonl"),
    platform.sinkDir,
    platform.configFile,
    platform.dataDir,
    join(platform.dataDir, "artifacts", done.body.id),
    scratch,
    join(scratch, "workspaces", holding.body.id),
    join(scratch, "workspaces", holding.body.id, "hold", "1", "outputs", "marker.txt"),
  ];
  const pid = agent.child.pid!;
  const port = new URL(agent.url).port;
  const submitted = await studio.post("/v1/runs", {
    workflow: workflow("adversary", [
      stage("attack", [process.execPath, ADVERSARY], { ADVERSARY_TARGETS: JSON.stringify(targets), ADVERSARY_PID: String(pid), ADVERSARY_PORT: port }),
    ]),
  });
  expect(submitted.status).toBe(202);
  const run = await studio.waitForRun(submitted.body.id);
  expect(run.status, JSON.stringify(run)).toBe("succeeded");
  const report = await studio.raw(`/v1/runs/${submitted.body.id}/artifacts/report.json`);
  expect(report.status).toBe(200);
  await rival.post(`/v1/runs/${holding.body.id}/cancel`);
  return { tries: (await report.json()) as Try[], rivalRun: holding.body.id };
}

describe.runIf(sandboxWorks)("a hostile stage in the sandbox", () => {
  const fx = useAgent({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }], tenants: [tenant("studio"), tenant("rival")] });

  it(
    "reaches no secret, no other run, not the agent's process and not the network",
    async () => {
      const { tries } = await attack(fx.platform, fx.agent);
      const reached = tries.filter((t) => t.ok && !["list /", "whoami"].includes(t.what));
      expect(reached, JSON.stringify(reached, null, 2)).toEqual([]);
      // Every kind of try was made (15 paths, the agent's environ and cmdline, a signal, a connection).
      expect(tries.filter((t) => t.what.startsWith("read ")).length).toBe(17);
      expect(tries.some((t) => t.what.startsWith("signal ") && !t.ok)).toBe(true);
      expect(tries.some((t) => t.what.startsWith("connect ") && !t.ok)).toBe(true);
      // Its whole world: system folders, its own stage folders, /proc of its own namespace.
      const root = tries.find((t) => t.what === "list /")!;
      expect(root.ok).toBe(true);
      const allowed = new Set(["bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc", "sbin", "stage", "tmp", "usr", REPO_ROOT.split("/")[1]!]);
      expect(root.detail!.split(",").filter((name) => !allowed.has(name))).toEqual([]);
      // A uid of its tenant's own: not the agent's.
      const who = tries.find((t) => t.what === "whoami")!;
      if (process.getuid?.() === 0) expect(who.detail).toBe("200000:200000");
      else expect(who.detail).toBe(`${process.getuid?.()}:${process.getgid?.()}`);
    },
    TIMEOUT
  );

  it(
    "refuses a stage that declares egress where the platform does not allow it",
    async () => {
      const studio = client(fx.agent.url, fx.platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", {
        workflow: workflow("wants-net", [stage("fetch", ["/bin/true"], {}, { network: "egress" })]),
      });
      expect(submitted.status).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("failed");
      expect(JSON.stringify(run)).toMatch(/allowEgress/);
    },
    TIMEOUT
  );
});

describe.runIf(sandboxWorks)("egress where the platform allows it", () => {
  const fx = useAgent({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }], isolation: { allowEgress: true } });

  it(
    "lets a stage that declares run.network: egress connect, and keeps one that does not offline",
    async () => {
      const studio = client(fx.agent.url, fx.platform.tokens.studio!);
      const port = new URL(fx.agent.url).port;
      const env = { ADVERSARY_PID: "1", ADVERSARY_PORT: port };
      const online = await studio.post("/v1/runs", { workflow: workflow("online", [stage("net", [process.execPath, ADVERSARY], env, { network: "egress" })]) });
      const offline = await studio.post("/v1/runs", { workflow: workflow("offline", [stage("net", [process.execPath, ADVERSARY], env)]) });
      const connectOf = async (id: string) => {
        expect((await studio.waitForRun(id)).status).toBe("succeeded");
        const tries = (await (await studio.raw(`/v1/runs/${id}/artifacts/report.json`)).json()) as Try[];
        return tries.find((t) => t.what.startsWith("connect "))!;
      };
      expect((await connectOf(online.body.id)).ok).toBe(true);
      expect((await connectOf(offline.body.id)).ok).toBe(false);
    },
    TIMEOUT
  );
});

describe("the same hostile stage with --unsafe-shared-identity", () => {
  const fx = useAgent({ devices: [{ id: "g0", node: "n0", memoryMiB: 24_576 }], tenants: [tenant("studio"), tenant("rival")] }, ["--unsafe-shared-identity"]);

  it(
    "reads the keys and signals the agent: what the sandbox takes away, and a warning in the log and the audit trail",
    async () => {
      const { tries } = await attack(fx.platform, fx.agent);
      const ok = (prefix: string) => tries.find((t) => t.what.startsWith(prefix))?.ok;
      expect(ok(`read ${join(fx.platform.keyringDir, "current")}`)).toBe(true);
      expect(ok(`read ${join(fx.platform.dataDir, "agent.db")}`)).toBe(true);
      expect(ok("signal ")).toBe(true);
      expect(ok("connect ")).toBe(true);
      expect(fx.agent.output()).toMatch(/"level":50[^\n]*unsafe-shared-identity/i);
    },
    TIMEOUT
  );
});
