/**
 * Usage accounting end to end: a real agent runs two workflows for each of two tenants; GET /v1/usage
 * sums what the runs' attempts held, never shows another tenant's work, answers bad ranges with a 400
 * naming the field, and GET /v1/usage.csv is an RFC 4180 export of the same figures. The GPU-seconds
 * counters on /metrics agree, labelled by tenant and a bounded workflow value.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvField } from "../../../runtime/agent/api/routes/usage.ts";
import { USAGE_CSV_COLUMNS } from "../../../runtime/agent/api/routes/usage.schemas.ts";
import { client, createPlatform, removePlatform, sleepyWorkflow, startAgentProcess, type AgentProcess, type TestPlatform } from "./harness.ts";

/** An RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks; records end in CRLF. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = "";
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (c === '"') (quoted = false), i++;
      else (field += c), i++;
    } else if (c === '"' && field === "") (quoted = true), i++;
    else if (c === ",") record.push(field), (field = ""), i++;
    else if (c === "\r" && text[i + 1] === "\n") record.push(field), records.push(record), (record = []), (field = ""), (i += 2);
    else if (c === "\n" || c === "\r") throw new Error(`a bare line break at ${i}: records must end in CRLF`);
    else (field += c), i++;
  }
  if (field !== "" || record.length > 0) throw new Error("the last record does not end in CRLF");
  return records;
}

/** Two stages: `render` on 2 GPUs with 2 GiB each, then `encode` on one GPU with 1 GiB. */
function twoStage(name: string, ms: number): Record<string, unknown> {
  const doc = sleepyWorkflow(name, [
    { id: "render", vram: "2Gi", ms },
    { id: "encode", needs: ["render"], vram: "1Gi", ms },
  ]) as { spec: { stages: Array<{ resources: { gpus: number } }> } };
  doc.spec.stages[0]!.resources.gpus = 2;
  return doc;
}

const secondsOf = (s: { startedAt: string; finishedAt: string }) => (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000;

describe("GET /v1/usage and /v1/usage.csv on a running agent", () => {
  let platform: TestPlatform;
  let agent: AgentProcess;
  let studio: ReturnType<typeof client>;
  let rival: ReturnType<typeof client>;
  /** Per tenant: `workflow/stage` → { gpus, vramGiB, seconds } from the runs' stages. */
  const expected: Record<string, Map<string, { gpus: number; vramGiB: number; seconds: number }>> = { studio: new Map(), rival: new Map() };

  beforeAll(async () => {
    platform = createPlatform({
      devices: [
        { id: "g0", node: "n0", memoryMiB: 8192 },
        { id: "g1", node: "n0", memoryMiB: 8192 },
      ],
    });
    agent = await startAgentProcess(platform);
    studio = client(agent.url, platform.tokens.studio);
    rival = client(agent.url, platform.tokens.rival);
    const submitted: Array<{ who: string; api: ReturnType<typeof client>; id: string; workflow: string }> = [];
    for (const [who, api] of [["studio", studio], ["rival", rival]] as const) {
      for (const workflow of [`${who}-poster`, `${who}-thumbs`]) {
        const res = await api.post("/v1/runs", { workflow: twoStage(workflow, 300) });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        submitted.push({ who, api, id: res.body.id, workflow });
      }
    }
    for (const s of submitted) {
      const run = await s.api.waitForRun(s.id);
      expect(run.status).toBe("succeeded");
      for (const st of run.stages) {
        expect(st.attempts).toBe(1);
        expected[s.who]!.set(`${s.workflow}/${st.id}`, { gpus: st.id === "render" ? 2 : 1, vramGiB: st.id === "render" ? 2 : 1, seconds: secondsOf(st) });
      }
    }
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    if (platform) removePlatform(platform);
  });

  it("sums each stage's GPUs x seconds and reserved VRAM x seconds, the caller's tenant only", async () => {
    for (const [who, api] of [["studio", studio], ["rival", rival]] as const) {
      const res = await api.get("/v1/usage?from=-1h");
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.groupBy).toEqual(["tenant", "workflow", "stage"]);
      expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBe(3_600_000);
      const rows = res.body.rows as Array<{ tenant: string; workflow: string; stage: string; gpuSeconds: number; vramGiBSeconds: number; attempts: number }>;
      expect(rows.map((r) => `${r.workflow}/${r.stage}`).sort()).toEqual([...expected[who]!.keys()].sort());
      for (const r of rows) {
        expect(r.tenant).toBe(who);
        const e = expected[who]!.get(`${r.workflow}/${r.stage}`)!;
        expect(r.attempts).toBe(1);
        expect(r.gpuSeconds).toBeCloseTo(e.gpus * e.seconds, 2);
        expect(r.vramGiBSeconds).toBeCloseTo(e.gpus * e.vramGiB * e.seconds, 2);
        expect(r.gpuSeconds).toBeGreaterThan(0.25 * e.gpus);
      }
      // Nothing of the other tenant, under any grouping.
      const other = who === "studio" ? "rival" : "studio";
      expect(JSON.stringify(res.body)).not.toContain(other);
      const byTenant = await api.get("/v1/usage?from=-1h&groupBy=tenant");
      expect(byTenant.body.rows).toHaveLength(1);
      expect(byTenant.body.rows[0]).toMatchObject({ tenant: who, workflow: null, stage: null, attempts: 4 });
      const total = [...expected[who]!.values()].reduce((sum, e) => sum + e.gpus * e.seconds, 0);
      expect(byTenant.body.rows[0].gpuSeconds).toBeCloseTo(total, 2);
    }
  });

  it("defaults to the last 30 days, groups by workflow, and is empty before the runs", async () => {
    const res = await studio.get("/v1/usage");
    expect(res.status).toBe(200);
    expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBe(30 * 86_400_000);
    expect(res.body.rows).toHaveLength(4);
    const byWorkflow = await studio.get("/v1/usage?from=-1d&to=now&groupBy=workflow");
    expect(byWorkflow.body.rows.map((r: { workflow: string; stage: null; attempts: number }) => [r.workflow, r.stage, r.attempts])).toEqual([
      ["studio-poster", null, 2],
      ["studio-thumbs", null, 2],
    ]);
    const before = await studio.get(`/v1/usage?from=2020-01-01&to=2020-02-01T00:00:00Z`);
    expect(before.status).toBe(200);
    expect(before.body.rows).toEqual([]);
  });

  it("answers a bad range or grouping with a 400 naming the field and the fix", async () => {
    const cases: Array<[string, string, RegExp]> = [
      ["from=yesterday", "from", /ISO 8601.*-24h/],
      ["to=2026-13-45T00:00:00Z", "to", /ISO 8601/],
      ["from=2026-01-01T10:00:00", "from", /with its zone/],
      ["from=-1h&to=-2h", "to", /must be after from/],
      ["from=-400d", "from", /longer than 366 days/],
      ["groupBy=node", "groupBy", /tenant, workflow, stage/],
      ["form=-1h", "(query)", /form/],
    ];
    for (const [query, field, message] of cases) {
      for (const path of ["/v1/usage", "/v1/usage.csv"]) {
        const res = await studio.get(`${path}?${query}`);
        expect(res.status, `${path}?${query}`).toBe(400);
        expect(res.body.error.field, `${path}?${query}`).toBe(field);
        expect(res.body.error.message, `${path}?${query}`).toMatch(message);
      }
    }
  });

  it("exports the same figures as an RFC 4180 CSV attachment with a header row", async () => {
    const json = await studio.get("/v1/usage?from=-2h&to=now");
    const raw = await studio.raw("/v1/usage.csv?from=-2h&to=now");
    expect(raw.status).toBe(200);
    expect(raw.headers.get("content-type")).toMatch(/^text\/csv; charset=utf-8/);
    expect(raw.headers.get("content-disposition")).toMatch(/^attachment; filename="gpufabric-usage-studio-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.csv"$/);
    const records = parseCsv(await raw.text());
    expect(records[0]).toEqual([...USAGE_CSV_COLUMNS]);
    const rows = records.slice(1).map((r) => Object.fromEntries(USAGE_CSV_COLUMNS.map((c, i) => [c, r[i]!])));
    expect(rows).toHaveLength(json.body.rows.length);
    rows.forEach((r, i) => {
      const j = json.body.rows[i];
      expect([r.tenant, r.workflow, r.stage]).toEqual([j.tenant, j.workflow, j.stage]);
      expect(Number(r.gpu_seconds)).toBeCloseTo(j.gpuSeconds, 1);
      expect(Number(r.gpu_hours)).toBeCloseTo(j.gpuSeconds / 3600, 4);
      expect(Number(r.vram_gib_seconds)).toBeCloseTo(j.vramGiBSeconds, 1);
      expect(Number(r.attempts)).toBe(j.attempts);
      expect(Date.parse(r.from!)).toBeLessThan(Date.parse(r.to!));
    });
    expect(JSON.stringify(records)).not.toContain("rival");
    // Without a credential: refused like every tenant route.
    expect((await client(agent.url, undefined).get("/v1/usage.csv")).status).toBe(401);
  });

  it("counts GPU-seconds on /metrics per tenant, under the bounded workflow label", async () => {
    const text = (await studio.get("/metrics")).body as string;
    const sample = (name: string) => {
      const m = new RegExp(`^${name}\\{tenant="studio",workflow="\\(inline\\)"\\} (\\S+)$`, "m").exec(text);
      return m ? Number(m[1]) : undefined;
    };
    const total = [...expected.studio!.values()].reduce((sum, e) => sum + e.gpus * e.seconds, 0);
    const vram = [...expected.studio!.values()].reduce((sum, e) => sum + e.gpus * e.vramGiB * e.seconds, 0);
    // The counters time each process from its start to its exit; the store's attempts also hold their GPUs
    // while their outputs are sealed, so the usage API's figure is the larger by that much.
    expect(sample("gpufabric_gpu_seconds_total")).toBeGreaterThan(total * 0.7);
    expect(sample("gpufabric_gpu_seconds_total")).toBeLessThan(total + 0.1);
    expect(sample("gpufabric_vram_gib_seconds_total")).toBeGreaterThan(vram * 0.7);
    expect(sample("gpufabric_vram_gib_seconds_total")).toBeLessThan(vram + 0.2);
    // Inline documents' own names never become label values; the other tenant's series are left out.
    expect(text).not.toMatch(/workflow="studio-poster"/);
    expect(text).not.toContain('tenant="rival"');
    // Simulated GPUs: the DCGM names are declared, with no reading under them.
    expect(text).toContain("# TYPE DCGM_FI_DEV_FB_USED gauge");
    expect(text).not.toMatch(/^DCGM_FI_DEV_\w+\{/m);
  });
});

describe("csvField", () => {
  it("quotes commas, quotes and line breaks, and defuses spreadsheet formulas", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("two\r\nlines")).toBe('"two\r\nlines"');
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvField("@SUM(A1),x")).toBe("\"'@SUM(A1),x\"");
    expect(csvField("-1.5", false)).toBe("-1.5");
    expect(parseCsv(`h1,h2\r\n${csvField('a"b,c')},${csvField("x\ny")}\r\n`)).toEqual([
      ["h1", "h2"],
      ['a"b,c', "x\ny"],
    ]);
  });
});
