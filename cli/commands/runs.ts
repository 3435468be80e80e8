import { Option, type Command } from "commander";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { resolveConnection, type ConnectionFlags } from "../client/connection.ts";
import { artifactTarget, downloadArtifact, type DownloadedArtifact } from "../client/downloads.ts";
import { AgentClient } from "../client/http.ts";
import { followLogs, logsPath, type LogTail } from "../client/logs.ts";
import { formatColumns } from "../client/progress.ts";
import { getRun, outcomeLine, watchRun, type RunView } from "../client/watch.ts";
import { CliError, EXIT } from "../errors.ts";

interface CommonOptions extends ConnectionFlags {
  json?: boolean;
}

/**
 * `gpufabric runs`: the agent's runs from the command line (submit, follow, fetch results, cancel), over
 * its HTTP API with a tenant's token. Where the agent is and which token to use: --url/--token-file,
 * GPUFABRIC_URL/GPUFABRIC_TOKEN, or a profile (`gpufabric profile`).
 */
export function register(program: Command): void {
  const runs = program.command("runs").description("submit runs to an agent, follow them, fetch their artifacts and logs");

  withCommon(runs.command("submit").argument("[file]", "a native workflow (YAML or JSON) or a ComfyUI API prompt (JSON)"))
    .description("submit a run of a workflow file, or of a configured workflow with --ref")
    .option("--ref <name>", "run the configured workflow of this name instead of a file")
    .option("--input <key=value>", "a run input (repeatable); a value that parses as JSON is JSON (42, true, [\"a\"]), else a string", collectInput)
    .addOption(new Option("--priority <priority>", "the run's priority").choices(["interactive", "batch"]))
    .option("--idempotency-key <key>", "a resubmission with the same key returns the same run instead of a new one")
    .option("--watch", "follow the run until it ends (exit 0 when it succeeds, 1 otherwise)")
    .action((file: string | undefined, options: CommonOptions & { ref?: string; input?: Record<string, unknown>; priority?: string; idempotencyKey?: string; watch?: boolean }) =>
      withClient(options, async (client) => {
        const body = { ...submissionOf(file, options.ref), ...(options.priority && { priority: options.priority }), ...(options.input !== undefined && { inputs: options.input }) };
        const answer = await client.json<{ id: string; status: string }>("POST", "/v1/runs", body, options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {});
        const replayed = answer.headers["idempotent-replayed"] === "true";
        if (options.json) process.stdout.write(`${JSON.stringify({ ...answer.body, replayed })}\n`);
        else process.stdout.write(`run ${answer.body.id} ${answer.body.status}${replayed ? " (already submitted with this idempotency key)" : ""}\n`);
        if (options.watch) await watchToEnd(client, answer.body.id, options.json === true);
        else if (!options.json) process.stdout.write(`follow it: gpufabric runs watch ${answer.body.id}\n`);
      })
    );

  withCommon(runs.command("list"))
    .description("the tenant's runs, newest first")
    .option("--status <status>", "only runs in this state: queued, running, succeeded, failed or cancelled")
    .option("--limit <n>", "at most this many (1 to 1000)", "100")
    .action((options: CommonOptions & { status?: string; limit: string }) =>
      withClient(options, async (client) => {
        const query = new URLSearchParams({ ...(options.status && { status: options.status }), limit: options.limit });
        const { body } = await client.json<{ runs: Array<Record<string, string | null>> }>("GET", `/v1/runs?${query}`);
        if (options.json) return void process.stdout.write(`${JSON.stringify(body.runs)}\n`);
        if (body.runs.length === 0) return void process.stdout.write(`no runs${options.status ? ` ${options.status}` : ""}\n`);
        const rows = body.runs.map((r) => [r.id ?? "", r.status ?? "", r.workflow ?? "", r.priority ?? "", r.submittedBy ?? "", r.createdAt ?? ""]);
        process.stdout.write(`${formatColumns([["ID", "STATUS", "WORKFLOW", "PRIORITY", "SUBMITTED BY", "CREATED"], ...rows]).join("\n")}\n`);
      })
    );

  withCommon(runs.command("get").argument("<id>", "the run's id"))
    .description("a run: its stages (status, GPUs, attempts, exit codes, reasons) and artifacts")
    .action((id: string, options: CommonOptions) =>
      withClient(options, async (client) => {
        const run = await getRun(client, id);
        process.stdout.write(options.json ? `${JSON.stringify(run)}\n` : `${describeRun(run).join("\n")}\n`);
      })
    );

  withCommon(runs.command("watch").argument("<id>", "the run's id"))
    .description("follow a run's progress per stage until it ends (exit 0 when it succeeds, 1 when it fails or is cancelled)")
    .action((id: string, options: CommonOptions) => withClient(options, (client) => watchToEnd(client, id, options.json === true)));

  withCommon(runs.command("logs").argument("<id>", "the run's id").argument("<stage>", "the stage's id"))
    .description("a stage's logs (the last 256 KiB of stdout and stderr), of its latest attempt unless --attempt")
    .option("--attempt <n>", "this attempt's logs (1 is the first)")
    .option("--follow", "keep printing what the stage writes until it ends")
    .action((id: string, stage: string, options: CommonOptions & { attempt?: string; follow?: boolean }) =>
      withClient(options, async (client) => {
        const attempt = options.attempt === undefined ? undefined : wholeNumber("--attempt", options.attempt, 1);
        if (options.follow) {
          return followLogs(client, id, stage, attempt, {
            text: (stream, n, text) => (options.json ? process.stdout.write(`${JSON.stringify({ attempt: n, stream, text })}\n`) : (stream === "stdout" ? process.stdout : process.stderr).write(text)),
            attemptStarted: (n) => void (options.json || process.stderr.write(`--- ${stage}, attempt ${n} ---\n`)),
          });
        }
        const { body } = await client.json<LogTail>("GET", logsPath(id, stage, attempt));
        if (options.json) return void process.stdout.write(`${JSON.stringify(body)}\n`);
        process.stdout.write(body.stdout);
        process.stderr.write(body.stderr);
        if (body.truncated) process.stderr.write(`(only the last 256 KiB of each stream of attempt ${body.attempt} are shown)\n`);
      })
    );

  withCommon(runs.command("artifacts").argument("<id>", "the run's id"))
    .description("download a run's artifacts, decrypted, into DIR/<stage>/<name>")
    .option("--out <dir>", "the folder to write into (default: ./<run id>)")
    .action((id: string, options: CommonOptions & { out?: string }) =>
      withClient(options, async (client) => {
        const run = await getRun(client, id);
        const outDir = resolve(options.out ?? run.id);
        // Every name checked before anything is written: a hostile one leaves no partial download behind.
        for (const artifact of run.artifacts) artifactTarget(outDir, artifact.stage, artifact.name);
        mkdirSync(outDir, { recursive: true, mode: 0o700 });
        const written: DownloadedArtifact[] = [];
        for (const artifact of run.artifacts) written.push(await downloadArtifact(client, run.id, artifact, outDir));
        if (options.json) return void process.stdout.write(`${JSON.stringify(written)}\n`);
        for (const a of written) process.stdout.write(`${a.path}  ${a.bytes} bytes\n`);
        const note = run.status === "succeeded" || run.status === "failed" || run.status === "cancelled" ? "" : ` (the run is ${run.status}: more may come)`;
        process.stdout.write(`${written.length} artifact(s) of run ${run.id} in ${outDir}${note}\n`);
      })
    );

  withCommon(runs.command("cancel").argument("<id>", "the run's id"))
    .description("cancel a run: its running stages' processes are stopped")
    .action((id: string, options: CommonOptions) =>
      withClient(options, async (client) => {
        const { body } = await client.json<{ id: string; status: string }>("POST", `/v1/runs/${encodeURIComponent(id)}/cancel`);
        process.stdout.write(options.json ? `${JSON.stringify(body)}\n` : `run ${body.id} ${body.status}\n`);
      })
    );
}

/** The connection and output options every `runs` verb takes. */
function withCommon(command: Command): Command {
  return command
    .option("--profile <name>", "the profile to use (see 'gpufabric profile'); default: GPUFABRIC_PROFILE, else the current one")
    .option("--url <url>", "the agent's URL (default: GPUFABRIC_URL, else the profile's)")
    .option("--token-file <file>", "file holding the tenant's API token, chmod 600 (default: GPUFABRIC_TOKEN, GPUFABRIC_TOKEN_FILE, else the profile's)")
    .option("--ca-file <file>", "CA certificate (PEM) the agent's TLS certificate is checked against (default: GPUFABRIC_CA_FILE, else the profile's caFile)")
    .option("--json", "print machine-readable JSON (JSON lines for watch and --follow)");
}

async function withClient(options: CommonOptions, action: (client: AgentClient) => Promise<void>): Promise<void> {
  const client = new AgentClient(resolveConnection(options));
  try {
    await action(client);
  } finally {
    client.close();
  }
}

async function watchToEnd(client: AgentClient, id: string, json: boolean): Promise<void> {
  const mode = json ? "json" : process.stdout.isTTY ? "table" : "lines";
  const run = await watchRun(client, id, mode);
  if (run.status !== "succeeded") throw new CliError(outcomeLine(run), EXIT.failure);
  if (!json) process.stdout.write(`${outcomeLine(run)}\n`);
}

/** The body of POST /v1/runs for a file or a --ref. */
function submissionOf(file: string | undefined, ref: string | undefined): { workflow: unknown } | { workflowRef: string } {
  if (file !== undefined && ref !== undefined) throw new CliError("give a workflow FILE or --ref NAME, not both", EXIT.usage);
  if (ref !== undefined) return { workflowRef: ref };
  if (file === undefined) throw new CliError("give a workflow FILE (native YAML/JSON or a ComfyUI API prompt) or --ref NAME of a configured workflow", EXIT.usage);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CliError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): give the workflow file to submit`, EXIT.usage);
  }
  let workflow: unknown;
  try {
    // JSON is YAML: one parser reads both.
    workflow = parseYaml(text);
  } catch (err) {
    throw new CliError(`${file} is neither YAML nor JSON (${(err as Error).message.split("\n")[0]})`, EXIT.usage);
  }
  if (typeof workflow !== "object" || workflow === null || Array.isArray(workflow)) {
    throw new CliError(`${file} must hold a workflow (apiVersion, kind: Workflow, spec) or a ComfyUI API prompt (an object of nodes)`, EXIT.usage);
  }
  return { workflow };
}

/** `--input key=value`, collected into one object. */
function collectInput(pair: string, inputs: Record<string, unknown> = {}): Record<string, unknown> {
  const at = pair.indexOf("=");
  if (at <= 0) throw new CliError(`--input '${pair}': use key=value, e.g. --input seed=42`, EXIT.usage);
  const key = pair.slice(0, at);
  const text = pair.slice(at + 1);
  let value: unknown = text;
  try {
    value = JSON.parse(text);
  } catch {
    // not JSON: the text itself
  }
  return { ...inputs, [key]: value };
}

function wholeNumber(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) throw new CliError(`${flag} must be a whole number of at least ${min} (got '${text}')`, EXIT.usage);
  return n;
}

function describeRun(run: RunView): string[] {
  const lines = [
    `run ${run.id}  ${run.status}`,
    `workflow ${run.workflow}  priority ${run.priority}  submitted by ${String(run.submittedBy ?? "-")}  at ${String(run.createdAt ?? "-")}`,
    "",
    ...formatColumns([
      ["STAGE", "STATUS", "ATTEMPTS", "GPUS", "EXIT", "REASON"],
      ...run.stages.map((s) => [s.id, s.status, String(s.attempts), s.gpus.join(",") || "-", s.exitCode === null ? "" : String(s.exitCode), s.reason ?? ""]),
    ]),
  ];
  if (run.artifacts.length > 0) {
    lines.push("", ...formatColumns([["STAGE", "ARTIFACT", "BYTES"], ...run.artifacts.map((a) => [a.stage, a.name, String(a.bytes)])]));
    lines.push(`download them: gpufabric runs artifacts ${run.id} --out DIR`);
  }
  return lines;
}
