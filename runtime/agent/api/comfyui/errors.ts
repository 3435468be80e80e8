/**
 * ComfyUI's error shapes (`server.py` post_prompt, `execution.py` validate_prompt): clients read
 * `error.type` and `node_errors`, so a refused prompt answers exactly as ComfyUI would.
 */

export interface ComfyErrorItem {
  readonly type: string;
  readonly message: string;
  readonly details: string;
  readonly extra_info: Readonly<Record<string, unknown>>;
}

export interface ComfyNodeError {
  readonly errors: ComfyErrorItem[];
  readonly dependent_outputs: string[];
  readonly class_type: string;
}

export type ComfyNodeErrors = Record<string, ComfyNodeError>;

export function errorItem(type: string, message: string, details = "", extra_info: Record<string, unknown> = {}): ComfyErrorItem {
  return { type, message, details, extra_info };
}

/** A refusal in ComfyUI's shape: `{ error: {type, message, details, extra_info}, node_errors }` with its status. */
export class ComfyError extends Error {
  constructor(
    readonly status: number,
    readonly error: ComfyErrorItem,
    readonly nodeErrors: ComfyNodeErrors = {},
  ) {
    super(error.message);
  }

  body(): { error: ComfyErrorItem; node_errors: ComfyNodeErrors } {
    return { error: this.error, node_errors: this.nodeErrors };
  }
}

export function invalidPrompt(message: string, details = ""): ComfyError {
  return new ComfyError(400, errorItem("invalid_prompt", message, details));
}

/** No output is left valid: ComfyUI's `prompt_outputs_failed_validation`, details joined as ComfyUI joins them. */
export function outputsFailed(nodeErrors: ComfyNodeErrors): ComfyError {
  const details = Object.values(nodeErrors)
    .flatMap((n) => n.errors)
    .map((e) => `${e.message}: ${e.details}`)
    .join("\n");
  return new ComfyError(400, errorItem("prompt_outputs_failed_validation", "Prompt outputs failed validation", details), nodeErrors);
}
