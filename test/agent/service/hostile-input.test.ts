/**
 * The real agent process against hostile JSON and hostile stream and credential requests: documents
 * nested thousands of levels deep (in run inputs, in a ComfyUI node input, in a node's _meta) are refused
 * with a 400 naming the path before anything walks them; an event stream that starts past the end
 * answers at once and closes when the run is over; duplicate credential headers are refused.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

const TIMEOUT = 180_000;

/** `{"a":{"a":…{}…}}` nested `depth` objects deep, as text (JSON.stringify itself would overflow the stack). */
function nestedObjectText(depth: number, leaf = "{}"): string {
  return '{"a":'.repeat(depth - 1) + leaf + "}".repeat(depth - 1);
}

function nestedArrayText(depth: number): string {
  return "[".repeat(depth) + "]".repeat(depth);
}

/** A raw request, so that duplicate headers and unusual bodies can be sent. */
export function rawRequest(
  url: string,
  options: { method?: string; path: string; headers?: Record<string, string | string[]>; body?: string | Buffer }
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request({ hostname, port, method: options.method ?? "GET", path: options.path, headers: options.headers, agent: false }, (res) => {
      answered = true;
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on("error", (err) => (answered ? undefined : reject(err)));
    req.end(options.body);
  });
}

describe("hostile input is refused early", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let token: string;
  let finishedRun: string;

  beforeAll(async () => {
    platform = createPlatform({ devices: [{ id: "local-g0", node: "n0", memoryMiB: 24_576 }] });
    agent = await startAgentProcess(platform);
    token = platform.tokens.studio!;
    const studio = client(agent.url, token);
    const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("small", [{ id: "only", ms: 10 }]) });
    finishedRun = (await studio.waitForRun(submitted.body.id)).id;
  }, TIMEOUT);
  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  const postText = (text: string, headers: Record<string, string> = {}) =>
    rawRequest(agent.url, {
      method: "POST",
      path: "/v1/runs",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers },
      body: text,
    });

  const healthy = async () => expect((await rawRequest(agent.url, { path: "/healthz" })).status).toBe(200);

  it.each([65, 5_000, 50_000, 200_000])("refuses inputs nested %i levels deep with a 400 naming the path and the fix", async (depth) => {
    const answer = await postText(`{"workflowRef":"contact-sheet","inputs":${nestedObjectText(depth)}}`);
    expect(answer.status, answer.body).toBe(400);
    const error = JSON.parse(answer.body).error;
    expect(error.code).toBe("too-deep");
    expect(error.field).toMatch(/^inputs\.a\.a\.a/);
    expect(error.message).toContain("64");
    expect(error.message).toContain("--max-json-depth");
    await healthy();
  });

  it("refuses arrays nested 200,000 levels deep as the whole body", async () => {
    const answer = await postText(nestedArrayText(200_000));
    expect(answer.status, answer.body).toBe(400);
    expect(JSON.parse(answer.body).error.field).toMatch(/^\[0\]\[0\]/);
    await healthy();
  });

  it("refuses a ComfyUI node input and a node's _meta nested 50,000 levels deep", async () => {
    for (const [where, field] of [
      ["inputs", /^workflow\.1\.inputs\.text\.a\.a/],
      ["_meta", /^workflow\.1\._meta\.a\.a/],
    ] as const) {
      const node =
        where === "inputs"
          ? `{"class_type":"CLIPTextEncode","inputs":{"text":${nestedObjectText(50_000)}}}`
          : `{"class_type":"CLIPTextEncode","inputs":{"text":"x"},"_meta":${nestedObjectText(50_000)}}`;
      const answer = await postText(`{"workflow":{"1":${node}}}`);
      expect(answer.status, answer.body).toBe(400);
      expect(JSON.parse(answer.body).error.field).toMatch(field);
    }
    await healthy();
  });

  it("does not count brackets inside strings, and accepts a document at the depth limit", async () => {
    const brackets = "[{".repeat(10_000);
    const answer = await postText(`{"workflowRef":"contact-sheet","inputs":{"text":"${brackets}","deep":${nestedObjectText(60)}}}`);
    expect(answer.status, answer.body).toBe(202);
  });

  it("still refuses malformed JSON and __proto__ keys with a 400", async () => {
    expect((await postText('{"workflowRef": "contact-sheet",')).status).toBe(400);
    expect((await postText('{"workflowRef":"contact-sheet","inputs":{"__proto__":{"x":1}}}')).status).toBe(400);
    expect((await postText('{"workflowRef":"contact-sheet"}}')).status).toBe(400);
  });

  it("answers an event stream that starts past the end at once, and closes it when the run is over", async () => {
    const started = Date.now();
    const answer = await rawRequest(agent.url, { path: `/v1/runs/${finishedRun}/events?after=1000000`, headers: { authorization: `Bearer ${token}` } });
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toContain("text/event-stream");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("sends the headers of a stream past the end of a running run at once, and closes it when the run ends", async () => {
    const studio = client(agent.url, token);
    const submitted = await studio.post("/v1/runs", { workflow: sleepyWorkflow("short", [{ id: "only", ms: 1500 }]) });
    const started = Date.now();
    const headersAt = new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(agent.url);
      request({ hostname, port, path: `/v1/runs/${submitted.body.id}/events?after=1000000000`, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        const at = Date.now() - started;
        res.resume();
        res.on("end", () => resolve(at));
      })
        .on("error", reject)
        .end();
    });
    const at = await headersAt;
    expect(at).toBeLessThan(1500);
    // The stream ended, and only after the run did.
    expect((await studio.get(`/v1/runs/${submitted.body.id}`)).body.status).toBe("succeeded");
  });

  it.each(["1e308", "-1", "1.5", "abc", "9007199254740993"])("refuses after=%s with a 400 naming the field", async (after) => {
    const answer = await rawRequest(agent.url, { path: `/v1/runs/${finishedRun}/events?after=${after}`, headers: { authorization: `Bearer ${token}` } });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).error.field).toBe("after");
  });

  it("refuses two Authorization headers, and a comma-joined one, naming the header", async () => {
    const twice = await rawRequest(agent.url, { path: "/v1/runs", headers: { authorization: [`Bearer ${token}`, "Bearer gf_other"] } });
    expect(twice.status).toBe(400);
    expect(JSON.parse(twice.body).error.field).toBe("authorization");
    const joined = await rawRequest(agent.url, { path: "/v1/runs", headers: { authorization: `Bearer ${token}, Bearer ${token}` } });
    expect(joined.status).toBe(400);
    expect(JSON.parse(joined.body).error.field).toBe("authorization");
    expect((await rawRequest(agent.url, { path: "/v1/runs", headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });
});
