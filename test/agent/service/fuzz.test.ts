/**
 * Hostile requests against the real agent process, generated with fast-check: malformed and deeply
 * nested JSON, bodies over the limit, traversal in run ids, artifact names and stage ids, NUL and odd
 * unicode, wrong content types, absurd resources, oversized and duplicate headers. Every answer must
 * be a 4xx (or a 2xx where the request happens to be valid), never a 5xx, and /healthz stays 200
 * throughout and after. FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> changes its length.
 */
import { request } from "node:http";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, createPlatform, removePlatform, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;
const RUNS = Number(process.env.FUZZ_RUNS ?? 600);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** The agent's default body limit (DEFAULT_BODY_LIMIT_BYTES). */
const BODY_LIMIT = 4 * 1024 * 1024 + 64 * 1024;

interface HostileRequest {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: string | Buffer;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/**
 * Sends one request on a fresh connection. An event stream is closed as soon as its headers arrive; a
 * connection the agent resets while a refused body is still being sent counts as refused (status 0).
 */
function send(url: string, r: HostileRequest): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request({ hostname, port, method: r.method, path: r.path, headers: r.headers, agent: false }, (res) => {
      answered = true;
      if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        res.destroy();
        resolve({ status: res.statusCode!, body: "" });
        return;
      }
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
      res.on("error", () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer in 20 s to ${r.method} ${r.path.slice(0, 200)}`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (answered) return;
      if ((err.code === "ECONNRESET" || err.code === "EPIPE") && r.kind === "huge-body") resolve({ status: 0, body: "" });
      else reject(err);
    });
    req.end(r.body);
  });
}

function healthz(url: string): Promise<number> {
  return send(url, { kind: "probe", method: "GET", path: "/healthz", headers: {} }).then((a) => a.status);
}

/** `depth` nested containers around a leaf, as text (JSON.stringify of such a value would overflow). */
const nested = (depth: number, open: string, close: string, leaf: string) => open.repeat(depth) + leaf + close.repeat(depth);

/** Strings that break naive handling: traversal, encoded separators, NUL, controls, odd unicode, length. */
const nastyString = fc.oneof(
  fc.constantFrom(
    "..",
    "../../agent.db",
    "..%2F..%2Fagent.db",
    "%2e%2e%2f%2e%2e",
    "%2Fetc%2Fpasswd",
    "a%00b",
    "%00",
    "%ff%fe",
    "\u0000",
    "\u202e\u0041",
    "\ud800",
    "🦄".repeat(50),
    "a".repeat(5000),
    "CON",
    "keyring/current",
    "tokens\\studio",
    "1e308",
    "-1",
    " "
  ),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 })
);

/** Every UTF-8 byte percent-encoded (encodeURIComponent throws on a lone surrogate). */
function percentEncode(s: string): string {
  return [...Buffer.from(s, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
}

function pathSegment(s: string): string {
  // Raw where the request line allows it (the router sees it as it is), else percent-encoded.
  return /^[\x21-\x7e]*$/.test(s) && !s.includes("?") && !s.includes("#") ? s : percentEncode(s);
}

function hostileRequests(auth: string, runId: string): fc.Arbitrary<HostileRequest> {
  const json = (kind: string, body: string, headers: Record<string, string | string[]> = {}): HostileRequest => ({
    kind,
    method: "POST",
    path: "/v1/runs",
    headers: { authorization: auth, "content-type": "application/json", ...headers },
    body,
  });
  const idOrNasty = fc.oneof(fc.constant(runId), nastyString);

  const malformed = fc
    .tuple(fc.json({ maxDepth: 4 }), fc.nat(), fc.constantFrom("{", "}", "[", "]", '"', ",", ":", "\\", "\u0000", "nul", "\ud800", "1e99999", "-", "0x1"))
    .map(([text, at, insert]) => json("malformed-json", text.slice(0, at % (text.length + 1)) + insert + text.slice(at % (text.length + 1))));

  const deep = fc
    .tuple(fc.integer({ min: 65, max: 250_000 }), fc.constantFrom("inputs", "node-input", "meta", "root-array", "workflow", "mixed"))
    .map(([depth, where]) => {
      switch (where) {
        case "inputs":
          return json("deep", `{"workflowRef":"contact-sheet","inputs":{"a":${nested(depth, '{"a":', "}", "1")}}}`);
        case "node-input":
          return json("deep", `{"workflow":{"1":{"class_type":"CLIPTextEncode","inputs":{"text":${nested(depth, "[", "]", '"x"')}}}}}`);
        case "meta":
          return json("deep", `{"workflow":{"1":{"class_type":"CLIPTextEncode","inputs":{"text":"x"},"_meta":${nested(depth, '{"t":', "}", "1")}}}}`);
        case "root-array":
          return json("deep", nested(depth, "[", "]", ""));
        case "workflow":
          return json("deep", `{"workflow":${nested(depth, '{"spec":', "}", "{}")}}`);
        default:
          return json("deep", `{"inputs":${nested(Math.ceil(depth / 2), '[{"k":', "}]", "null")}}`);
      }
    });

  const huge = fc.constantFrom(BODY_LIMIT + 1, BODY_LIMIT * 2).map((size) => json("huge-body", `{"inputs":{"pad":"${"x".repeat(size)}"}}`));

  const traversal = fc.tuple(idOrNasty, nastyString, nastyString, fc.constantFrom("run", "events", "cancel", "artifact", "logs", "artifact-stage")).map(([id, name, stage, route]) => {
    const r = pathSegment(id);
    const paths: Record<string, [string, string]> = {
      run: ["GET", `/v1/runs/${r}`],
      events: ["GET", `/v1/runs/${r}/events?after=${pathSegment(stage)}`],
      cancel: ["POST", `/v1/runs/${r}/cancel`],
      artifact: ["GET", `/v1/runs/${r}/artifacts/${pathSegment(name)}`],
      "artifact-stage": ["GET", `/v1/runs/${r}/artifacts/${pathSegment(name)}?stage=${pathSegment(stage)}`],
      logs: ["GET", `/v1/runs/${r}/stages/${pathSegment(stage)}/logs?attempt=${pathSegment(name)}`],
    };
    const [method, path] = paths[route]!;
    return { kind: "traversal", method, path, headers: { authorization: auth } } satisfies HostileRequest;
  });

  const unicodeFields = fc.tuple(nastyString, nastyString, nastyString).map(([ref, key, value]) =>
    json("unicode", JSON.stringify({ workflowRef: ref, inputs: { [key]: value }, priority: value }), { "idempotency-key": percentEncode(key).slice(0, 300) || "k" })
  );

  const contentTypes = fc
    .tuple(
      fc.constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "application/jsonx",
        "application/xml",
        "",
        "*/*",
        "application/json, text/plain"
      ),
      fc.constantFrom('{"workflowRef":"contact-sheet"}', "workflowRef=contact-sheet", "<run/>", "")
    )
    .map(([type, body]) => ({ kind: "content-type", method: "POST", path: "/v1/runs", headers: { authorization: auth, ...(type !== "" && { "content-type": type }) }, body }) satisfies HostileRequest);

  const absurdNumber = fc.constantFrom<unknown>(1e9, -1, 0.5, 1e308, -0, Number.MAX_SAFE_INTEGER + 2, "1e9", "-1", null, [], {}, true, "NaN", "Infinity");
  const absurdQuantity = fc.constantFrom<unknown>("-1Gi", "1e309", "1Ei", "99999999999Ti", "0.0000001", "1Gi ", "Gi", "", 1e300, -5, "１Gi", "1\u0000Gi");
  const resources = fc
    .tuple(absurdNumber, absurdQuantity, absurdNumber, fc.boolean())
    .map(([gpus, vram, duration, withCommand]) => {
      const stage = {
        id: "s",
        resources: { gpus, vram },
        estimate: { durationSeconds: duration },
        ...(withCommand && { run: { command: ["true"], timeoutSeconds: duration } }),
      };
      return json("resources", JSON.stringify({ workflow: { apiVersion: "gpufabric.dev/v1", kind: "Workflow", metadata: { name: "fuzz" }, spec: { stages: [stage] } } }));
    });

  const comfy = fc.tuple(absurdNumber, nastyString, fc.constantFrom("KSampler", "CheckpointLoaderSimple", "EmptyLatentImage", "__proto__", "")).map(([n, s, cls]) =>
    json("comfy", JSON.stringify({ workflow: { "1": { class_type: cls, inputs: { seed: n, ckpt_name: s, model: [s, n], width: n } }, [s || "2"]: { class_type: "SaveImage", inputs: { images: ["1", n] } } } }))
  );

  const headers = fc.oneof(
    fc.integer({ min: 17 * 1024, max: 96 * 1024 }).map((size) => ({ kind: "big-header", method: "GET", path: "/v1/runs", headers: { authorization: auth, "x-pad": "a".repeat(size) } }) satisfies HostileRequest),
    fc.integer({ min: 200, max: 2000 }).map((n) => {
      const many: Record<string, string> = { authorization: auth };
      for (let i = 0; i < n; i++) many[`x-h${i}`] = "v";
      return { kind: "many-headers", method: "GET", path: "/v1/runs", headers: many } satisfies HostileRequest;
    }),
    fc.constantFrom<HostileRequest>(
      { kind: "dup-auth", method: "GET", path: "/v1/runs", headers: { authorization: [auth, auth] } },
      { kind: "dup-auth", method: "GET", path: "/v1/runs", headers: { authorization: `${auth}, ${auth}` } },
      { kind: "bad-auth", method: "GET", path: "/v1/runs", headers: { authorization: "Bearer " + "A".repeat(4000) } },
      { kind: "bad-auth", method: "GET", path: "/v1/runs", headers: { authorization: "Basic Zm9vOmJhcg==" } },
      { kind: "query", method: "GET", path: "/v1/runs?limit=1e308&status=%00", headers: { authorization: auth } },
      { kind: "query", method: "GET", path: "/v1/runs?limit=-1", headers: { authorization: auth } },
      { kind: "query", method: "GET", path: `/v1/runs/${runId}/events`, headers: { authorization: auth, "last-event-id": "1e308" } },
      { kind: "method", method: "PUT", path: "/v1/runs", headers: { authorization: auth } },
      { kind: "method", method: "DELETE", path: `/v1/runs/${runId}`, headers: { authorization: auth } },
      { kind: "encoding", method: "POST", path: "/v1/runs", headers: { authorization: auth, "content-type": "application/json", "content-encoding": "br" }, body: "{}" }
    )
  );

  return fc.oneof(
    { arbitrary: malformed, weight: 4 },
    { arbitrary: deep, weight: 3 },
    { arbitrary: huge, weight: 1 },
    { arbitrary: traversal, weight: 5 },
    { arbitrary: unicodeFields, weight: 3 },
    { arbitrary: contentTypes, weight: 2 },
    { arbitrary: resources, weight: 3 },
    { arbitrary: comfy, weight: 3 },
    { arbitrary: headers, weight: 2 }
  );
}

describe("fuzzing the HTTP API with hostile requests", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let runId: string;

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    // Simulated stages end at once: valid runs the fuzzer happens to submit do not pile up.
    agent = await startAgentProcess(platform, ["--simulated-time-scale", "0"]);
    const submitted = await client(agent.url, platform.tokens.studio!).post("/v1/runs", { workflowRef: "contact-sheet" });
    expect(submitted.status).toBe(202);
    runId = submitted.body.id;
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it(
    `answers ${RUNS} hostile requests with 4xx (or 2xx where valid), never 5xx, and stays healthy`,
    async () => {
      const auth = `Bearer ${platform.tokens.studio!}`;
      const seen = new Map<string, Map<number, number>>();
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(hostileRequests(auth, runId), async (r) => {
          const answer = await send(agent.url, r);
          sent++;
          const byStatus = seen.get(r.kind) ?? new Map<number, number>();
          byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
          seen.set(r.kind, byStatus);
          expect(answer.status, `${r.kind} ${r.method} ${r.path.slice(0, 200)}: ${answer.body.slice(0, 300)}`).toBeLessThan(500);
          if (answer.status !== 0) expect(answer.status).toBeGreaterThanOrEqual(200);
          if (sent % 50 === 0) expect(await healthz(agent.url)).toBe(200);
        }),
        { numRuns: RUNS, ...(SEED !== undefined && { seed: SEED }), endOnFailure: true }
      );
      expect(await healthz(agent.url)).toBe(200);
      expect((await client(agent.url, platform.tokens.studio!).get(`/v1/runs/${runId}`)).status).toBe(200);
      // Every family was exercised; a summary helps when a family's answers change.
      const summary = Object.fromEntries([...seen].map(([kind, statuses]) => [kind, Object.fromEntries(statuses)]));
      for (const kind of ["malformed-json", "deep", "traversal", "unicode", "content-type", "resources", "comfy"]) expect(summary[kind], kind).toBeDefined();
      expect(agent.output()).not.toContain('"level":50');
      process.stdout.write(`fuzz: ${sent} requests: ${JSON.stringify(summary)}\n`);
    },
    TIMEOUT
  );
});
