/**
 * ComfyUI's files: `GET /view` serves a prompt's outputs (the subfolder names the prompt) and the
 * tenant's uploads (`type=input`); `POST /upload/image` takes an image for a prompt's LoadImage. A
 * client's names are looked up, never opened as paths.
 */
import { extname } from "node:path";
import type { FastifyInstance } from "fastify";
import { ApiError } from "../../service/api-error.ts";
import { loadPrompt, type ComfyApi } from "./context.ts";
import { uploadNameProblem } from "./uploads.ts";
import { MAX_UPLOAD_BYTES } from "./ws-hub.ts";

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".webp": "image/webp",
  ".gif": "image/gif",
  ".flac": "audio/flac",
  ".mp3": "audio/mpeg",
  ".opus": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

function contentTypeOf(name: string): string {
  return CONTENT_TYPES[extname(name).toLowerCase()] ?? "application/octet-stream";
}

/** ComfyUI's `name.png [output]` form: the mark names the folder. */
function annotated(filename: string, type: string | undefined): { filename: string; type: string } {
  const mark = / \[(input|output|temp)\]$/.exec(filename);
  return mark ? { filename: filename.slice(0, mark.index), type: mark[1]! } : { filename, type: type ?? "output" };
}

export function registerFileRoutes(app: FastifyInstance, api: ComfyApi): void {
  app.get<{ Querystring: { filename?: string; subfolder?: string; type?: string } }>("/view", async (request, reply) => {
    const tenant = request.identity!.tenant;
    if (typeof request.query.filename !== "string" || request.query.filename === "") {
      throw new ApiError(400, "invalid-request", "filename: name the file to view (and its subfolder and type as the history gave them)", "filename");
    }
    const { filename, type } = annotated(request.query.filename, request.query.type);
    const subfolder = request.query.subfolder ?? "";
    if (filename.startsWith("/") || filename.includes("..") || subfolder.split(/[\\/]/).includes("..") || subfolder.startsWith("/")) {
      throw new ApiError(400, "invalid-request", "filename and subfolder must not climb out of their folder ('..' or a leading '/')", "filename");
    }
    if (!["input", "output", "temp"].includes(type)) throw new ApiError(400, "invalid-request", "type: must be input, output or temp", "type");
    const disposition = `filename="${filename.replace(/["\\\r\n]/g, "_")}"`;
    if (type === "input") {
      const bytes = await api.uploads.read(tenant, subfolder ? `${subfolder}/${filename}` : filename);
      if (bytes === undefined) throw new ApiError(404, "not-found", `no uploaded file '${filename}'`, "filename");
      return reply.header("content-type", contentTypeOf(filename)).header("content-disposition", disposition).header("x-content-type-options", "nosniff").send(bytes);
    }
    // Outputs: the subfolder's first part is the prompt id, the rest the subfolder the server wrote to.
    const promptId = subfolder.split("/")[0] ?? "";
    const detail = await loadPrompt(api, request, promptId);
    if (detail === undefined) throw new ApiError(404, "not-found", `no output '${filename}' in subfolder '${subfolder.slice(0, 100)}'`, "subfolder");
    request.auditInfo!.object = `run/${detail.run.id}/artifact/${filename}`.slice(0, 1000);
    const file = (await api.prompts.outputs(detail)).files.find((f) => f.filename === filename && f.subfolder === subfolder && f.type === type);
    if (file === undefined) throw new ApiError(404, "not-found", `prompt '${detail.run.id}' has no ${type} file '${filename}'`, "filename");
    return reply
      .header("content-type", contentTypeOf(filename))
      .header("content-length", String(file.artifact.bytes))
      .header("content-disposition", disposition)
      .header("x-content-type-options", "nosniff")
      .send(await api.prompts.openArtifact(tenant, file.artifact));
  });

  app.post("/upload/image", { bodyLimit: MAX_UPLOAD_BYTES + 1024 * 1024 }, async (request) => {
    const tenant = request.identity!.tenant;
    const form = request.body;
    if (!(form instanceof FormData)) throw new ApiError(400, "invalid-request", "send the image as multipart/form-data with a file field 'image'", "image");
    const image = form.get("image");
    if (!(image instanceof Blob) || typeof (image as File).name !== "string") {
      throw new ApiError(400, "invalid-request", "image: a file field 'image' is required", "image");
    }
    const type = String(form.get("type") ?? "input");
    if (type !== "input") throw new ApiError(400, "invalid-request", "type: uploads go to the input folder here (send type=input or none)", "type");
    const subfolder = String(form.get("subfolder") ?? "").replace(/^\/+|\/+$/g, "");
    const overwrite = ["true", "1"].includes(String(form.get("overwrite") ?? "").toLowerCase());
    const filename = (image as File).name;
    const problem = uploadNameProblem(filename, subfolder);
    if (problem !== undefined) throw new ApiError(400, "invalid-request", `image: ${problem}`, "image");
    if (image.size > MAX_UPLOAD_BYTES) throw new ApiError(413, "body-too-large", `image: larger than ${MAX_UPLOAD_BYTES} bytes`, "image");
    const name = await api.uploads.save(tenant, subfolder, filename, Buffer.from(await image.arrayBuffer()), overwrite);
    return { name, subfolder, type };
  });
}
