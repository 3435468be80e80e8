/**
 * The run client's parts on their own: the artifact path check and the download's refusals (against a
 * local HTTP server that plays a hostile agent), the SSE reader, progress lines, log tails, the profiles
 * file and where the connection settings come from.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveConnection } from "../../cli/client/connection.ts";
import { artifactPathProblem, artifactTarget, downloadArtifact } from "../../cli/client/downloads.ts";
import { AgentClient } from "../../cli/client/http.ts";
import { newText } from "../../cli/client/logs.ts";
import { loadConfig, saveConfig, tokenFingerprint } from "../../cli/client/profiles.ts";
import { applyEvent, newProgress, parseRunEvent, renderTable } from "../../cli/client/progress.ts";
import { readServerEvents } from "../../cli/client/sse.ts";
import { CliError } from "../../cli/errors.ts";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "gpufabric-client-test-"));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("artifact paths", () => {
  it.each([
    ["../escape.png", "path separator"],
    ["..", "names a directory"],
    ["/etc/passwd", "path separator"],
    ["sub/dir.png", "path separator"],
    ["win\\dows.png", "path separator"],
    ["new\nline.png", "control character"],
    ["nul\u0000.png", "NUL"],
    ["\u001b[2Jclear.png", "control character"],
    ["full\uff0fwidth.png", "path separator"],
    [".hidden", "starts with '.'"],
    ["", "is empty"],
  ])("refuses the artifact name %j", (name, problem) => {
    expect(artifactPathProblem("render-1", name)).toContain(problem);
    expect(() => artifactTarget("/out", "render-1", name)).toThrow(CliError);
  });

  it("refuses a hostile stage id the same way, and places a good pair at DIR/<stage>/<name>", () => {
    expect(artifactPathProblem("../..", "x.png")).toMatch(/^stage "..\/.." contains a path separator/);
    expect(artifactPathProblem(42, "x.png")).toMatch(/must be a string/);
    expect(artifactTarget("/out", "render-1", "scene-1.png")).toBe("/out/render-1/scene-1.png");
  });
});

describe("artifact downloads from a hostile agent", () => {
  let server: Server;
  let client: AgentClient;
  const bodies = new Map<string, { body: Buffer; sha256: string }>();

  beforeAll(async () => {
    server = createServer((request, response) => {
      const url = new URL(request.url!, "http://x");
      const found = bodies.get(`${url.searchParams.get("stage")}/${decodeURIComponent(url.pathname.split("/").pop()!)}`);
      if (!found) return void response.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"not-found","message":"no artifact","field":"name"}}');
      response.writeHead(200, { "x-content-sha256": found.sha256, "content-length": String(found.body.length) }).end(found.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    client = new AgentClient({ url: new URL(`http://127.0.0.1:${port}`), token: "gf_test", source: { url: "test", token: "test" } });
  });
  afterAll(async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => bodies.clear());

  const serve = (stage: string, name: string, body: Buffer, sha256 = createHash("sha256").update(body).digest("hex")) => {
    bodies.set(`${stage}/${name}`, { body, sha256 });
    return { stage, name, bytes: body.length, sha256 };
  };

  it("writes a verified file to DIR/<stage>/<name> and leaves no temporary file", async () => {
    const out = tempDir();
    const written = await downloadArtifact(client, "run-1", serve("render-1", "scene-1.png", Buffer.from("png bytes")), out);
    expect(written.path).toBe(join(out, "render-1", "scene-1.png"));
    expect(readFileSync(written.path, "utf8")).toBe("png bytes");
    expect(readdirSync(join(out, "render-1"))).toEqual(["scene-1.png"]);
  });

  it("never writes outside DIR for a name that climbs, and writes nothing at all", async () => {
    const root = tempDir();
    const out = join(root, "out");
    mkdirSync(out);
    const artifact = serve("render-1", "../../escaped.png", Buffer.from("x"));
    await expect(downloadArtifact(client, "run-1", artifact, out)).rejects.toThrow(/refusing to write an artifact: artifact name "..\/..\/escaped.png" contains a path separator/);
    expect(existsSync(join(root, "escaped.png"))).toBe(false);
    expect(readdirSync(out)).toEqual([]);
  });

  it("refuses a download whose SHA-256 differs from the agent's, keeping neither the file nor its temporary", async () => {
    const out = tempDir();
    const artifact = serve("render-1", "scene-1.png", Buffer.from("tampered"), "0".repeat(64));
    await expect(downloadArtifact(client, "run-1", { ...artifact, sha256: "0".repeat(64) }, out)).rejects.toThrow(/SHA-256 .* is not the agent's 0{64}/);
    expect(readdirSync(join(out, "render-1"))).toEqual([]);
  });

  it("refuses to replace a symbolic link, and leaves the file it points to alone", async () => {
    const out = tempDir();
    const victim = join(tempDir(), "victim.txt");
    writeFileSync(victim, "keep me");
    mkdirSync(join(out, "render-1"));
    symlinkSync(victim, join(out, "render-1", "scene-1.png"));
    await expect(downloadArtifact(client, "run-1", serve("render-1", "scene-1.png", Buffer.from("x")), out)).rejects.toThrow(/symbolic link/);
    expect(readFileSync(victim, "utf8")).toBe("keep me");
  });

  it("refuses a stage folder that is a symbolic link out of DIR", async () => {
    const out = tempDir();
    const elsewhere = tempDir();
    symlinkSync(elsewhere, join(out, "render-1"));
    await expect(downloadArtifact(client, "run-1", serve("render-1", "scene-1.png", Buffer.from("x")), out)).rejects.toThrow(/render-1: it is a symbolic link/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it("turns the agent's error body into a message with its field", async () => {
    const out = tempDir();
    await expect(downloadArtifact(client, "run-1", { stage: "render-1", name: "gone.png", bytes: 1, sha256: "0".repeat(64) }, out)).rejects.toThrow("not found (404): no artifact (field 'name')");
  });
});

describe("server-sent events", () => {
  it("reads events split across chunks, with CRLF, comments and multi-line data", async () => {
    async function* chunks() {
      yield Buffer.from("id: 1\nevent: run.accepted\ndata: {\"a\"");
      yield Buffer.from(":1}\n\n: keep-alive\n\nid: 2\r\nevent: stage.running\r\ndata: x\r\ndata: y\r");
      yield Buffer.from("\n\r\ndata: z\n");
    }
    const events = [];
    for await (const e of readServerEvents(chunks())) events.push(e);
    // The last one was not closed by a blank line: dropped.
    expect(events).toEqual([
      { id: "1", type: "run.accepted", data: '{"a":1}' },
      { id: "2", type: "stage.running", data: "x\ny" },
    ]);
  });
});

describe("progress", () => {
  it("describes each change on one line and keeps a table of every stage", () => {
    const progress = newProgress("r1", ["prompt", "render-1"]);
    const ev = (id: number, type: string, stage: string | null, data: Record<string, unknown> = {}, at = `2026-01-01T00:00:0${id}.000Z`) =>
      parseRunEvent(String(id), type, JSON.stringify({ ...data, stage, at }));
    expect(applyEvent(progress, ev(1, "run.accepted", null))).toBe("00:00:01  run r1 accepted");
    expect(applyEvent(progress, ev(2, "stage.placed", "render-1", { attempt: 1, gpus: ["g0"] }))).toBe("00:00:02  render-1  placed  (attempt 1, on g0)");
    applyEvent(progress, ev(3, "stage.running", "render-1", { attempt: 1 }));
    expect(applyEvent(progress, ev(5, "stage.failed", "render-1", { attempt: 1, reason: "exited 3", exitCode: 3 }))).toBe(
      "00:00:05  render-1  failed  (attempt 1, 2.0 s, exited 3, exit code 3)"
    );
    expect(applyEvent(progress, ev(6, "run.failed", null, { reason: "stage render-1 failed" }))).toBe("00:00:06  run r1 failed: stage render-1 failed");
    const table = renderTable(progress);
    expect(table[0]).toBe("run r1  failed  0/2 stages succeeded");
    expect(table[1]).toMatch(/^STAGE +STATUS +ATTEMPT +GPUS +TIME +REASON$/);
    expect(table[3]).toMatch(/^render-1 +failed +1 +g0 +2\.0 s +exited 3, exit code 3$/);
    // Taller than the terminal: succeeded stages give way, counted on a line of their own.
    const many = newProgress("r2", Array.from({ length: 30 }, (_, i) => `s${i}`));
    for (let i = 0; i < 28; i++) many.stages.get(`s${i}`)!.status = "succeeded";
    const short = renderTable(many, Date.now(), 10);
    expect(short.length).toBeLessThanOrEqual(10);
    expect(short[0]).toBe("run r2  queued  28/30 stages succeeded");
    expect(short.slice(2, 4).map((l) => l.split(" ")[0])).toEqual(["s28", "s29"]);
    expect(short.at(-1)).toBe("(28 more stage(s) not shown: succeeded, or beyond the terminal's height)");
  });
});

describe("log tails", () => {
  it("prints only what a new read adds, also when the tail window moved on", () => {
    expect(newText("", "a\n")).toBe("a\n");
    expect(newText("a\n", "a\nb\n")).toBe("b\n");
    // A window of 100 lines that moved on by 3 lines, its first character cut.
    const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${from + i}\n`).join("");
    expect(newText(lines(0, 100), `\ufffd${lines(3, 103).slice(1)}`)).toBe(lines(100, 103));
    expect(newText("old\n", "unrelated\n")).toBe("unrelated\n");
  });
});

describe("profiles file", () => {
  it("is written 0600 in a 0700 folder, and one the group or others may read is refused with the chmod fix", () => {
    const file = join(tempDir(), "nested", "gpufabric", "config.yaml");
    saveConfig(file, { current: "dev", profiles: { dev: { url: "http://127.0.0.1:9", token: "gf_secret" } } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
    expect(loadConfig(file).profiles.dev!.token).toBe("gf_secret");
    chmodSync(file, 0o644);
    expect(() => loadConfig(file)).toThrow(`${file} may be read or changed by its group or others (mode 0644) and can hold tokens: run 'chmod 600 ${file}'`);
  });

  it("names the field and the fix for a malformed profile", () => {
    const file = join(tempDir(), "config.yaml");
    writeFileSync(file, "profiles:\n  dev: { url: http://127.0.0.1:9, tokn: x }\n", { mode: 0o600 });
    expect(() => loadConfig(file)).toThrow("profiles.dev.tokn is not a profile setting: use url, token, tokenFile and caFile");
    writeFileSync(file, "current: prod\nprofiles:\n  dev: { url: http://127.0.0.1:9 }\n");
    expect(() => loadConfig(file)).toThrow(/current names 'prod', which is not among the profiles \(dev\)/);
  });

  it("shows a token only as a fingerprint", () => {
    expect(tokenFingerprint("gf_secret")).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(tokenFingerprint("gf_secret")).not.toContain("secret");
  });
});

describe("connection settings", () => {
  const setup = () => {
    const dir = tempDir();
    const config = join(dir, "config.yaml");
    saveConfig(config, {
      current: "dev",
      profiles: { dev: { url: "http://127.0.0.1:1001", token: "gf_dev" }, prod: { url: "https://agent.example.internal:8443", token: "gf_prod" } },
    });
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "gf_flag\n", { mode: 0o600 });
    return { env: { GPUFABRIC_CONFIG: config } as NodeJS.ProcessEnv, tokenFile };
  };

  it("takes flags over the environment over the current profile", () => {
    const { env, tokenFile } = setup();
    const fromProfile = resolveConnection({}, env);
    expect([fromProfile.url.origin, fromProfile.token]).toEqual(["http://127.0.0.1:1001", "gf_dev"]);
    const fromEnv = resolveConnection({}, { ...env, GPUFABRIC_URL: "http://127.0.0.1:2002", GPUFABRIC_TOKEN: "gf_env" });
    expect([fromEnv.url.origin, fromEnv.token, fromEnv.source.url]).toEqual(["http://127.0.0.1:2002", "gf_env", "GPUFABRIC_URL"]);
    const fromFlags = resolveConnection({ url: "http://127.0.0.1:3003", tokenFile }, { ...env, GPUFABRIC_URL: "http://127.0.0.1:2002", GPUFABRIC_TOKEN: "gf_env" });
    expect([fromFlags.url.origin, fromFlags.token]).toEqual(["http://127.0.0.1:3003", "gf_flag"]);
  });

  it("lets --profile (a flag) win over the environment, and GPUFABRIC_PROFILE pick a profile", () => {
    const { env } = setup();
    const chosen = resolveConnection({ profile: "prod" }, { ...env, GPUFABRIC_URL: "http://127.0.0.1:2002", GPUFABRIC_TOKEN: "gf_env" });
    expect([chosen.url.origin, chosen.token]).toEqual(["https://agent.example.internal:8443", "gf_prod"]);
    expect(resolveConnection({}, { ...env, GPUFABRIC_PROFILE: "prod" }).token).toBe("gf_prod");
    expect(() => resolveConnection({ profile: "staging" }, env)).toThrow(/no profile 'staging' in .* \(profiles: dev, prod\)/);
  });

  it("never sends a profile's token to another agent's URL", () => {
    const { env } = setup();
    expect(() => resolveConnection({ url: "http://127.0.0.1:4004" }, env)).toThrow(/no token for http:\/\/127\.0\.0\.1:4004 \(profile 'dev' in .* is for http:\/\/127\.0\.0\.1:1001/);
  });

  it("refuses plain http to another machine and a token file others may read", () => {
    const { env, tokenFile } = setup();
    expect(() => resolveConnection({ url: "http://agent.example.internal:8080", tokenFile }, env)).toThrow(/plain http to another machine/);
    chmodSync(tokenFile, 0o644);
    expect(() => resolveConnection({ url: "http://127.0.0.1:3003", tokenFile }, env)).toThrow(/readable by others \(mode 0644\): run 'chmod 600/);
  });

  it("needs no config file when the environment says everything, even beside a broken one", () => {
    const dir = tempDir();
    const config = join(dir, "config.yaml");
    writeFileSync(config, "profiles: {}\n", { mode: 0o644 });
    const connection = resolveConnection({}, { GPUFABRIC_CONFIG: config, GPUFABRIC_URL: "http://127.0.0.1:5005", GPUFABRIC_TOKEN: "gf_env" });
    expect(connection.token).toBe("gf_env");
    expect(() => resolveConnection({}, { GPUFABRIC_CONFIG: config })).toThrow(/mode 0644/);
  });
});

const hasOpenssl = spawnSync("openssl", ["version"]).status === 0;

describe.skipIf(!hasOpenssl)("an agent behind a private CA", () => {
  it("is refused with the --ca-file fix until its CA is given, then answers", async () => {
    const dir = tempDir();
    const [key, crt] = [join(dir, "agent.key"), join(dir, "agent.crt")];
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=agent", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt], { stdio: "ignore" });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(crt) }, (request, response) => {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ runs: [], auth: request.headers.authorization }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const untrusted = new AgentClient(resolveConnection({ url }, { GPUFABRIC_TOKEN: "gf_t", GPUFABRIC_CONFIG: join(dir, "none.yaml") }));
      await expect(untrusted.json("GET", "/v1/runs")).rejects.toThrow(/the TLS certificate of the agent at https:\/\/127\.0\.0\.1:\d+ \(--url\) is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT: .*\): pass --ca-file/);
      untrusted.close();
      const trusted = new AgentClient(resolveConnection({ url, caFile: crt }, { GPUFABRIC_TOKEN: "gf_t", GPUFABRIC_CONFIG: join(dir, "none.yaml") }));
      expect((await trusted.json<{ auth: string }>("GET", "/v1/runs")).body.auth).toBe("Bearer gf_t");
      trusted.close();
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
