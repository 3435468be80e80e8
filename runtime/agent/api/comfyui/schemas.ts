/**
 * Descriptive zod schemas of ComfyUI's server API as the agent serves it, for /openapi.json. These routes
 * keep ComfyUI's own permissive parsing and error shapes (clients written for ComfyUI depend on them), so
 * the schemas describe what is accepted without taking part in the checks.
 */
import { z } from "zod";

const ErrorItem = z.object({ type: z.string(), message: z.string(), details: z.string(), extra_info: z.record(z.string(), z.unknown()) });

/** A refused prompt, as ComfyUI answers it (`server.py` post_prompt). */
export const ComfyErrorSchema = z.object({
  error: ErrorItem,
  node_errors: z.record(z.string(), z.object({ errors: z.array(ErrorItem), dependent_outputs: z.array(z.string()), class_type: z.string() })),
});

export const PromptBody = z.looseObject({
  prompt: z.record(z.string(), z.unknown()).meta({ description: "the API-format prompt: node id → { class_type, inputs }" }),
  client_id: z.string().optional(),
  prompt_id: z.string().optional().meta({ description: "a client-chosen id for the prompt (its run id)" }),
  extra_data: z.record(z.string(), z.unknown()).optional(),
  front: z.boolean().optional(),
  number: z.number().optional(),
});
export const PromptQueued = z.object({ prompt_id: z.string(), number: z.number(), node_errors: z.record(z.string(), z.unknown()) });
export const ClearOrDelete = z.looseObject({
  clear: z.boolean().optional(),
  delete: z.array(z.string()).optional().meta({ description: "prompt ids" }),
});
export const HistoryQuery = z.object({ max_items: z.string().optional(), offset: z.string().optional() });
export const PromptIdParams = z.object({ promptId: z.string() });
export const ViewQuery = z.object({
  filename: z.string().optional(),
  subfolder: z.string().optional(),
  type: z.enum(["output", "input", "temp"]).optional(),
});
export const NodeClassParams = z.object({ nodeClass: z.string() });
export const FolderParams = z.object({ folder: z.string() });
export const WsQuery = z.object({
  clientId: z.string().optional(),
  token: z.string().optional().meta({ description: "the API token, for WebSocket clients that cannot set a header" }),
});
