/**
 * Traces of runs over OTLP/HTTP, from the real agent process to a real receiver (a Node HTTP server
 * taking POST /v1/traces as the JSON encoding of OTLP): one trace per run whose id comes from the run id,
 * a span per stage attempt with its phases as children, TRACEPARENT in the stage process; and with no
 * endpoint configured, nothing at all, even with the OpenTelemetry environment variables pointing at it.
 * In a cluster (a real PostgreSQL, a control plane and a worker), the worker's stage process is traced too.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ObservabilitySchema, ValidationError, loadPlatformConfig, parsePlatformConfig } from "../../runtime/config/index.ts";
import { LocalCluster } from "../../runtime/agent/cluster/local-cluster.ts";
import { startLocalPostgres } from "../../runtime/agent/cluster/local-postgres.ts";
import { createTracing, executionSpanIdOf, traceIdOfRun } from "../../runtime/agent/service/tracing.ts";
import { client, createPlatform, removePlatform, sleep, sleepyWorkflow, startAgentProcess, waitFor, type AgentProcess, type TestPlatform } from "./service/harness.ts";

const TIMEOUT = 180_000;
const SECRET = "collector-secret-4f1c9a";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

/** An OTLP/HTTP receiver: keeps every request's headers and spans. */
async function startReceiver(): Promise<{ url: string; server: Server; requests: Array<{ path: string; headers: IncomingHttpHeaders }>; spans: OtlpSpan[]; services: string[] }> {
  const requests: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const spans: OtlpSpan[] = [];
  const services: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ path: req.url ?? "", headers: req.headers });
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: Array<{ resource: { attributes: OtlpSpan["attributes"] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of body.resourceSpans) {
        services.push(String(rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue));
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests, spans, services };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** A receiver, then a platform of one 24 GiB GPU (`deviceId` on n0) with the tracing config `tracing` makes of the receiver's URL (none: tracing off). */
async function receiverAndPlatform(deviceId: string, tracing?: (receiverUrl: string) => Record<string, unknown>): Promise<{ receiver: Receiver; platform: TestPlatform }> {
  const receiver = await startReceiver();
  const devices = [{ id: deviceId, node: "n0", memoryMiB: 24_576 }];
  return { receiver, platform: createPlatform(tracing === undefined ? { devices } : { devices, observability: { tracing: tracing(receiver.url) } }) };
}

/** A describe's afterAll: stops what it started, closes its receiver and removes its platform, as far as its beforeAll got. */
async function stopAll(running: { stop(): Promise<void> } | undefined, receiver: Receiver | undefined, platform: TestPlatform | undefined): Promise<void> {
  await running?.stop();
  receiver?.server.close();
  if (platform) removePlatform(platform);
}

const attr = (span: OtlpSpan, key: string): unknown => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  if ("arrayValue" in v) return ((v.arrayValue as { values?: Array<{ stringValue: string }> }).values ?? []).map((x) => x.stringValue);
  if ("intValue" in v) return Number(v.intValue);
  return v.stringValue ?? v.boolValue ?? v.doubleValue;
};
const nanos = (s: string) => BigInt(s);

/** Writes $TRACEPARENT (or "none") into the output artifact `<id>.traceparent`. */
const writesTraceparent = (id: string) => `require("fs").writeFileSync(process.env.GPUFABRIC_OUTPUT_DIR + "/${id}.traceparent", process.env.TRACEPARENT ?? "none")`;

describe("tracing on: an OTLP/HTTP endpoint configured", () => {
  let platform: TestPlatform;
  let agent: AgentProcess | undefined;
  let receiver: Receiver;

  beforeAll(async () => {
    ({ receiver, platform } = await receiverAndPlatform("local-g0", (url) => ({ endpoint: `${url}/v1/traces`, headers: { "x-collector-key": SECRET }, serviceName: "gpufabric-test", sampleRatio: 1 })));
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(() => stopAll(agent, receiver, platform));

  it(
    "sends one trace per run: a span per attempt (two for a retried stage) with queue wait, placement, model load, execution and sealing inside it, and TRACEPARENT under its execution span",
    async () => {
      const studio = client(agent!.url, platform.tokens.studio!);
      const doc = sleepyWorkflow("traced", [
        { id: "prepare", ms: 50 },
        // Fails its first attempt, succeeds on the second.
        { id: "flaky", needs: ["prepare"], script: `if (process.env.GPUFABRIC_ATTEMPT === "1") process.exit(3); ${writesTraceparent("flaky")}` },
        { id: "finish", needs: ["flaky"], script: writesTraceparent("finish") },
      ]) as { spec: { stages: Array<Record<string, unknown>> } };
      doc.spec.stages[1]!.retry = { attempts: 2, backoffSeconds: 0 };
      const submitted = await studio.post("/v1/runs", { workflow: doc });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run)).toBe("succeeded");
      const traceId = traceIdOfRun(run.id);

      const attemptSpans = await waitFor("four attempt spans", () => {
        const found = receiver.spans.filter((s) => attr(s, "gpufabric.run.id") === run.id);
        return found.length >= 4 ? found : undefined;
      });
      await sleep(1500); // a last batch, if any, would come within the processor's delay
      const ofRun = receiver.spans.filter((s) => s.traceId === traceId);
      // One trace for the run: every span of its attempts and phases carries the run's trace id.
      expect(receiver.spans.filter((s) => attr(s, "gpufabric.run.id") === run.id).every((s) => s.traceId === traceId)).toBe(true);
      expect(ofRun).toHaveLength(4 + 5 + 4 + 5 + 5); // flaky's failed attempt never reached sealing
      expect(attemptSpans.map((s) => `${attr(s, "gpufabric.stage.id")}#${attr(s, "gpufabric.attempt.number")}`).sort()).toEqual(["finish#1", "flaky#1", "flaky#2", "prepare#1"]);

      const phases = ["queue wait", "placement", "model load", "execution", "sealing"];
      for (const a of attemptSpans) {
        expect(a.parentSpanId ?? "").toBe("");
        expect(a.name).toBe(`stage ${attr(a, "gpufabric.stage.id")}`);
        expect(attr(a, "gpufabric.tenant")).toBe("studio");
        expect(attr(a, "gpufabric.workflow")).toBe("traced");
        expect(attr(a, "gpufabric.gpu.ids")).toEqual(["local-g0"]);
        expect(attr(a, "gpufabric.node")).toBe("n0");
        expect(typeof attr(a, "gpufabric.attempt.id")).toBe("string");
        const failed = attr(a, "gpufabric.stage.id") === "flaky" && attr(a, "gpufabric.attempt.number") === 1;
        expect(attr(a, "gpufabric.outcome")).toBe(failed ? "failed" : "succeeded");
        // Phases may start in the same millisecond: their order is checked on the times, in the phases' order.
        const children = ofRun.filter((s) => s.parentSpanId === a.spanId).sort((x, y) => phases.indexOf(x.name) - phases.indexOf(y.name));
        expect(children.map((c) => c.name)).toEqual(failed ? phases.slice(0, 4) : phases);
        let previousEnd = nanos(a.startTimeUnixNano);
        for (const c of children) {
          // In order, back to back, and within the attempt's span.
          expect(nanos(c.startTimeUnixNano)).toBeGreaterThanOrEqual(previousEnd);
          expect(nanos(c.endTimeUnixNano)).toBeGreaterThanOrEqual(nanos(c.startTimeUnixNano));
          expect(nanos(c.endTimeUnixNano)).toBeLessThanOrEqual(nanos(a.endTimeUnixNano));
          previousEnd = nanos(c.endTimeUnixNano);
        }
        expect(nanos(children[0]!.startTimeUnixNano)).toBe(nanos(a.startTimeUnixNano));
        // The execution span has the id the stage process was given as its parent.
        expect(children.find((c) => c.name === "execution")!.spanId).toBe(executionSpanIdOf(String(attr(a, "gpufabric.attempt.id"))));
      }

      // The stage processes saw TRACEPARENT: the run's trace, their own attempt's execution span, sampled.
      for (const stage of ["flaky", "finish"]) {
        const written = (await studio.get(`/v1/runs/${run.id}/artifacts/${stage}.traceparent`)).body as string;
        const attempt = attemptSpans.find((s) => attr(s, "gpufabric.stage.id") === stage && attr(s, "gpufabric.outcome") === "succeeded")!;
        expect(written).toBe(`00-${traceId}-${executionSpanIdOf(String(attr(attempt, "gpufabric.attempt.id")))}-01`);
      }
      expect(receiver.services).toContain("gpufabric-test");
      // The configured headers go to the collector, and nowhere into the agent's log.
      expect(receiver.requests.every((r) => r.headers["x-collector-key"] === SECRET)).toBe(true);
      expect(agent!.output()).not.toContain(SECRET);
    },
    TIMEOUT
  );

  it(
    "flushes on stop: an attempt ended by the agent's stop is sent before it exits",
    async () => {
      const studio = client(agent!.url, platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("stopped", [{ id: "long", ms: 60_000 }]) });
      expect(submitted.status).toBe(202);
      await studio.waitForRun(submitted.body.id, ["running"]);
      await agent!.stop();
      agent = undefined;
      const spans = receiver.spans.filter((s) => attr(s, "gpufabric.run.id") === submitted.body.id);
      expect(spans.map((s) => attr(s, "gpufabric.outcome"))).toEqual(["agent-stopped"]);
    },
    TIMEOUT
  );
});

const postgres = await startLocalPostgres();
const noPostgres = "unavailable" in postgres ? postgres.unavailable : undefined;
if (!("unavailable" in postgres)) await postgres.stop();
if (noPostgres) console.warn(`note: the cluster tracing test is skipped: ${noPostgres}`);

describe.runIf(noPostgres === undefined)("tracing on in a cluster: the leader traces, the worker's stage process gets the assignment's TRACEPARENT", () => {
  let platform: TestPlatform;
  let cluster: LocalCluster | undefined;
  let receiver: Receiver;

  beforeAll(async () => {
    ({ receiver, platform } = await receiverAndPlatform("g0", (url) => ({ endpoint: `${url}/v1/traces` })));
    cluster = await LocalCluster.start({ config: loadPlatformConfig(platform.configFile), dataDir: platform.dataDir, workers: 1, controlPlanes: 1, gpusPerWorker: 1 });
  }, TIMEOUT);
  afterAll(() => stopAll(cluster, receiver, platform));

  it(
    "sends the attempt's spans from the control plane, under the trace the worker's stage process was given",
    async () => {
      const studio = client(cluster!.url, platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("traced-cluster", [{ id: "only", script: writesTraceparent("only") }]) });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status, JSON.stringify(run)).toBe("succeeded");
      const attempt = await waitFor("the attempt's span", () => receiver.spans.find((s) => attr(s, "gpufabric.run.id") === run.id));
      expect(attempt.traceId).toBe(traceIdOfRun(run.id));
      const written = (await studio.get(`/v1/runs/${run.id}/artifacts/only.traceparent`)).body;
      expect(written).toBe(`00-${traceIdOfRun(run.id)}-${executionSpanIdOf(String(attr(attempt, "gpufabric.attempt.id")))}-01`);
    },
    TIMEOUT
  );
});

describe("tracing off: no endpoint configured", () => {
  let platform: TestPlatform;
  let agent: AgentProcess | undefined;
  let receiver: Receiver;
  const saved = { all: process.env.OTEL_EXPORTER_OTLP_ENDPOINT, traces: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT };

  beforeAll(async () => {
    ({ receiver, platform } = await receiverAndPlatform("local-g0"));
    // Were an exporter created anyway, these would send it to the receiver.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${receiver.url}/v1/traces`;
    agent = await startAgentProcess(platform);
  }, TIMEOUT);
  afterAll(async () => {
    await stopAll(agent, receiver, platform);
    for (const [name, value] of [["OTEL_EXPORTER_OTLP_ENDPOINT", saved.all], ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", saved.traces]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it(
    "creates no exporter, sends nothing and gives stage processes no TRACEPARENT",
    async () => {
      expect(await createTracing(ObservabilitySchema.parse({}).tracing, pino({ level: "silent" }))).toBeUndefined();
      const studio = client(agent!.url, platform.tokens.studio!);
      const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("untraced", [{ id: "only", script: writesTraceparent("only") }]) });
      const run = await studio.waitForRun(submitted.body.id);
      expect(run.status).toBe("succeeded");
      expect((await studio.get(`/v1/runs/${run.id}/artifacts/only.traceparent`)).body).toBe("none");
      await agent!.stop(); // a batch left would be flushed now
      agent = undefined;
      await sleep(500);
      expect(receiver.requests).toEqual([]);
    },
    TIMEOUT
  );
});

describe("observability.tracing in the platform config", () => {
  it("defaults to off and refuses an endpoint that is not an http(s) URL, naming the field", () => {
    const platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    try {
      const base = JSON.parse(readFileSync(platform.configFile, "utf8")) as Record<string, unknown>;
      const { observability: _dropped, ...without } = base;
      expect(parsePlatformConfig(without).observability.tracing).toEqual({ endpoint: null, headers: {}, serviceName: "gpufabric-agent", sampleRatio: 1 });
      for (const endpoint of ["collector:4318", "ftp://collector/v1/traces"]) {
        const bad = () => parsePlatformConfig({ ...base, observability: { tracing: { endpoint } } });
        expect(bad).toThrow(ValidationError);
        expect(bad).toThrow(/observability\.tracing\.endpoint: must be (the collector's OTLP\/HTTP traces URL|an http:\/\/ or https:\/\/ URL)/);
      }
      expect(() => parsePlatformConfig({ ...base, observability: { tracing: { endpoint: "http://c:4318/v1/traces", headers: { "bad name": "x" } } } })).toThrow(
        /observability\.tracing\.headers\.bad name: must be an HTTP header name/
      );
      expect(() => parsePlatformConfig({ ...base, observability: { tracing: { sampleRatio: 2 } } })).toThrow(/observability\.tracing\.sampleRatio: must be between 0 and 1/);
    } finally {
      removePlatform(platform);
    }
  });
});
