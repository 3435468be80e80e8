/**
 * Traces of runs over OpenTelemetry (OTLP/HTTP). One trace per run, whose id is derived from the run id,
 * so an agent that restarts, or another control plane that takes the run up, adds to the same trace.
 * Each stage attempt is a span from the moment its stage was ready to its end, with one child span per
 * phase: queue wait (ready → placed), placement (placed → the executor starts), model load (→ running),
 * execution (→ sealing) and sealing (→ finished). A phase the attempt never reached has no span.
 *
 * The spans of an attempt are built when it ends, from the times the loop reported: a span is exported
 * only once it ended anyway, and this keeps nothing open across awaits. The execution span's id is
 * derived from the attempt id before the attempt starts, so the stage process (TRACEPARENT) and its
 * ComfyUI server (`traceparent`) hang their own spans under it while it runs.
 *
 * The OpenTelemetry SDK is loaded only when an endpoint is configured: without one, nothing of it runs.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { TracingConfig } from "../../config/schema.ts";
import type { TraceContext } from "../executors/types.ts";
import type { AttemptTrace, AttemptTraceInfo, AttemptTraceOutcome, LoopTracing } from "./loop-types.ts";

export type { AttemptTrace, AttemptTraceInfo, AttemptTraceOutcome, LoopTracing } from "./loop-types.ts";

/** The run's trace id: the same for every agent and control plane that handles the run. */
export function traceIdOfRun(runId: string): string {
  return nonZero(createHash("sha256").update(`gpufabric-run\0${runId}`).digest("hex").slice(0, 32));
}

/** The span id of an attempt's execution span, known before the attempt starts (and by whoever starts it). */
export function executionSpanIdOf(attemptId: string): string {
  return nonZero(createHash("sha256").update(`gpufabric-attempt-execution\0${attemptId}`).digest("hex").slice(0, 16));
}

/** W3C `traceparent`: version 00, trace id, parent span id, flags (01: sampled). */
export function traceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

// An all-zero id is invalid in W3C trace context; a hash gives one with odds of 2^-64 at worst.
const nonZero = (hex: string) => (/^0+$/.test(hex) ? `${hex.slice(0, -1)}1` : hex);

/**
 * Starts tracing as the config says: undefined (and no OpenTelemetry module loaded) when no endpoint is
 * configured. The header values are handed to the exporter only: never logged.
 */
export async function createTracing(config: TracingConfig, logger: Logger): Promise<LoopTracing | undefined> {
  if (config.endpoint === null) return undefined;
  const [{ BasicTracerProvider, BatchSpanProcessor, RandomIdGenerator, TraceIdRatioBasedSampler, SamplingDecision }, { OTLPTraceExporter }, { resourceFromAttributes }, api] =
    await Promise.all([
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/api"),
    ]);
  const random = new RandomIdGenerator();
  // Ids the next span takes instead of random ones: set right before a (synchronous) startSpan, cleared right after.
  const next: { traceId?: string; spanId?: string } = {};
  const idGenerator = {
    generateTraceId: () => next.traceId ?? random.generateTraceId(),
    generateSpanId: () => next.spanId ?? random.generateSpanId(),
  };
  // The decision depends on the trace id only, so every agent decides alike for one run.
  const sampler = new TraceIdRatioBasedSampler(config.sampleRatio);
  const exporter = new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers }, timeoutMillis: 10_000 });
  let lastWarnMs = 0;
  const watched: typeof exporter = Object.assign(Object.create(exporter) as typeof exporter, {
    export(spans: Parameters<typeof exporter.export>[0], done: Parameters<typeof exporter.export>[1]) {
      exporter.export(spans, (result) => {
        // At most one warning a minute: a collector that is down must not flood the agent's log. Neither
        // the endpoint (it may hold credentials) nor the headers are written.
        if (result.code !== 0 && Date.now() - lastWarnMs > 60_000) {
          lastWarnMs = Date.now();
          logger.warn({ spans: spans.length, err: result.error?.message }, "trace spans could not be exported to the OTLP endpoint");
        }
        done(result);
      });
    },
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": config.serviceName }),
    sampler,
    idGenerator,
    spanProcessors: [new BatchSpanProcessor(watched, { scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer("gpufabric-agent");
  const startSpan = (name: string, options: import("@opentelemetry/api").SpanOptions, parent: import("@opentelemetry/api").Context, ids: { traceId?: string; spanId?: string }) => {
    Object.assign(next, ids);
    try {
      return tracer.startSpan(name, options, parent);
    } finally {
      delete next.traceId;
      delete next.spanId;
    }
  };

  const emit = (info: AttemptTraceInfo, times: PhaseTimes, endMs: number, outcome: AttemptTraceOutcome, details: { peakVramMiB?: number | null; simulated?: boolean }) => {
    const traceId = traceIdOfRun(info.runId);
    const readyMs = Math.min(times.ready, times.placed);
    const attempt = startSpan(
      `stage ${info.stageId}`,
      {
        startTime: readyMs,
        attributes: {
          "gpufabric.run.id": info.runId,
          "gpufabric.tenant": info.tenant,
          ...(info.workflow !== null && { "gpufabric.workflow": info.workflow }),
          "gpufabric.stage.id": info.stageId,
          "gpufabric.attempt.number": info.attempt,
          "gpufabric.attempt.id": info.attemptId,
          "gpufabric.gpu.ids": [...info.gpus],
          ...(info.node !== null && { "gpufabric.node": info.node }),
        },
      },
      api.ROOT_CONTEXT,
      { traceId }
    );
    attempt.setAttribute("gpufabric.outcome", outcome);
    if (details.peakVramMiB !== undefined && details.peakVramMiB !== null) attempt.setAttribute("gpufabric.peak_vram_mib", details.peakVramMiB);
    if (details.simulated !== undefined) attempt.setAttribute("gpufabric.simulated", details.simulated);
    if (outcome === "failed") attempt.setStatus({ code: api.SpanStatusCode.ERROR, message: "the attempt failed" });
    const parent = api.trace.setSpan(api.ROOT_CONTEXT, attempt);
    const points: Array<[string, number | undefined]> = [
      ["queue wait", readyMs],
      ["placement", times.placed],
      ["model load", times.load],
      ["execution", times.running],
      ["sealing", times.sealing],
    ];
    points.forEach(([name, start], i) => {
      if (start === undefined) return;
      const end = points.slice(i + 1).find(([, t]) => t !== undefined)?.[1] ?? endMs;
      const span = startSpan(name, { startTime: start }, parent, name === "execution" ? { spanId: executionSpanIdOf(info.attemptId) } : {});
      span.end(Math.max(start, end));
    });
    attempt.end(Math.max(readyMs, endMs));
  };

  return {
    attempt(info: AttemptTraceInfo): AttemptTrace {
      const traceId = traceIdOfRun(info.runId);
      const sampled = sampler.shouldSample(api.ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
      return new AttemptSpans(info, { traceparent: traceparent(traceId, executionSpanIdOf(info.attemptId), sampled) }, sampled ? emit : undefined);
    },
    async shutdown(): Promise<void> {
      // Flushes what the batch still holds; a collector that does not answer holds the stop for at most the export timeout.
      await provider.shutdown().catch((err: unknown) => logger.warn({ err: (err as Error).message }, "trace spans could not be flushed on stop"));
    },
  };
}

interface PhaseTimes {
  ready: number;
  placed: number;
  load?: number;
  running?: number;
  sealing?: number;
}

type Emit = (info: AttemptTraceInfo, times: PhaseTimes, endMs: number, outcome: AttemptTraceOutcome, details: { peakVramMiB?: number | null; simulated?: boolean }) => void;

/** The times of one attempt as the loop reports them; its spans are emitted once, when it ends. */
class AttemptSpans implements AttemptTrace {
  private readonly times: PhaseTimes;
  private ended = false;

  constructor(
    private readonly info: AttemptTraceInfo,
    readonly context: TraceContext,
    private readonly emit: Emit | undefined
  ) {
    this.times = { ready: info.readyAtMs, placed: info.placedAtMs };
  }

  loadStarted(): void {
    this.times.load ??= Date.now();
  }

  running(): void {
    this.times.running ??= Date.now();
  }

  sealing(): void {
    this.times.sealing ??= Date.now();
  }

  end(outcome: AttemptTraceOutcome, details: { peakVramMiB?: number | null; simulated?: boolean } = {}): void {
    if (this.ended) return;
    this.ended = true;
    this.emit?.(this.info, this.times, Date.now(), outcome, details);
  }
}
