/** A run's files: its artifacts (unsealed as they are sent) and the tails of its stages' logs. */
import { extname, join, relative, sep } from "node:path";
import type { FastifyInstance } from "fastify";
import { openInside, UnsafePathError } from "../../../security/names/index.ts";
import { ApiError } from "../../service/api-error.ts";
import type { HttpParts } from "../parts.ts";
import { parseRequest } from "../openapi/request.ts";
import { loadRun } from "./lookup.ts";

const LOG_TAIL_BYTES = 256 * 1024;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".yaml": "text/yaml; charset=utf-8",
};

export function registerArtifactRoutes(app: FastifyInstance, parts: HttpParts): void {
  const { store } = parts;
  app.get("/v1/runs/:runId/artifacts/:name", async (request, reply) => {
    const { params, query } = parseRequest(request, "GET /v1/runs/:runId/artifacts/:name");
    const detail = await loadRun(store, request, params.runId);
    const name = params.name;
    const stage = query.stage;
    const matches = detail.artifacts.filter((a) => a.name === name && (stage === undefined || a.stageId === stage));
    if (matches.length === 0)
      throw new ApiError(404, "not-found", `run '${detail.run.id}' has no artifact '${name}'${stage ? ` from stage '${stage}'` : ""}`, "name");
    if (matches.length > 1) {
      // Name each stage with the exact URL of its file, so a client (or a person) can pick without guessing the query.
      const urls = matches.map((a) => `${a.stageId}: /v1/runs/${encodeURIComponent(detail.run.id)}/artifacts/${encodeURIComponent(name)}?stage=${encodeURIComponent(a.stageId)}`);
      throw new ApiError(409, "ambiguous-artifact", `${matches.length} stages each wrote '${name}': ask for one stage's file with ?stage=<stage id> (${urls.join("; ")})`, "stage");
    }
    const artifact = matches[0]!;
    const root = parts.sealer.artifactsRoot;
    let handle;
    try {
      handle = await openInside(root, relative(root, artifact.path).split(sep));
    } catch (err) {
      if (err instanceof UnsafePathError || (err as NodeJS.ErrnoException).code === "ENOENT") {
        request.log.warn({ err, runId: detail.run.id, artifact: name }, "artifact file refused or missing");
        throw new ApiError(404, "not-found", `the file of artifact '${name}' is not available`, "name");
      }
      throw err;
    }
    return reply
      .header("content-type", CONTENT_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream")
      .header("content-length", String(artifact.bytes))
      .header("x-content-sha256", artifact.sha256)
      .send(parts.sealer.openArtifact(detail.run.tenant, artifact.path, handle));
  });

  app.get("/v1/runs/:runId/stages/:stageId/logs", async (request) => {
    const { params, query } = parseRequest(request, "GET /v1/runs/:runId/stages/:stageId/logs");
    const detail = await loadRun(store, request, params.runId);
    const stageId = params.stageId;
    const attempts = detail.attempts.filter((a) => a.stageId === stageId).sort((a, b) => a.number - b.number);
    if (!detail.stages.some((s) => s.stageId === stageId)) throw new ApiError(404, "not-found", `run '${detail.run.id}' has no stage '${stageId}'`, "stageId");
    const wanted = query.attempt === undefined ? attempts.at(-1) : attempts.find((a) => String(a.number) === query.attempt);
    if (wanted === undefined)
      throw new ApiError(404, "not-found", `stage '${stageId}' has no attempt${query.attempt ? ` ${query.attempt}` : " yet"}`, "attempt");
    const [stdout, stderr] = await Promise.all(
      (["stdout", "stderr"] as const).map((stream) => readLogTail(parts, detail.run.tenant, detail.run.id, stageId, `${wanted.number}.${stream}.log`))
    );
    return {
      stage: stageId,
      attempt: wanted.number,
      simulated: wanted.simulated,
      stdout: stdout!.text,
      stderr: stderr!.text,
      truncated: stdout!.truncated || stderr!.truncated,
    };
  });
}

/** An ended attempt's log is sealed in the data directory; a running one's is still in the scratch directory. */
async function readLogTail(parts: HttpParts, tenant: string, runId: string, stageId: string, file: string): Promise<{ text: string; truncated: boolean }> {
  let handle;
  try {
    handle = await openInside(parts.sealer.logsRoot, [runId, stageId, file]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return readTail(join(parts.scratchDir, "logs"), [runId, stageId, file]);
    throw err;
  }
  try {
    const plain = await parts.sealer.readLog(tenant, runId, stageId, file, handle);
    const tail = plain.subarray(Math.max(0, plain.length - LOG_TAIL_BYTES));
    return { text: tail.toString("utf8"), truncated: plain.length > tail.length };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function readTail(root: string, names: string[]): Promise<{ text: string; truncated: boolean }> {
  let handle;
  try {
    handle = await openInside(root, names);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { text: "", truncated: false };
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return { text: buffer.toString("utf8"), truncated: size > length };
  } finally {
    await handle.close();
  }
}
