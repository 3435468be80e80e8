/**
 * What one prompt's `/ws` events mean to an attempt: which are relayed (the prompt's own nodes only,
 * never the `gf-` nodes the executor added), which end it, and how its errors read.
 */
import type { ComfyRelayMessage } from "./contract.ts";

export type RelayedType = ComfyRelayMessage["type"];
const RELAYED: ReadonlySet<string> = new Set<RelayedType>(["execution_cached", "executing", "progress", "progress_state", "executed"]);

/**
 * The event as relayed: `prompt_id` dropped (the API layer sets its own), node ids of the prompt's own
 * nodes only. Undefined when nothing of it is the client's to see.
 */
export function relayedData(type: string, data: Readonly<Record<string, unknown>>, own: ReadonlySet<string>): Record<string, unknown> | undefined {
  if (!RELAYED.has(type)) return undefined;
  const { prompt_id: _dropped, ...rest } = data;
  if (type === "execution_cached") {
    const nodes = Array.isArray(rest.nodes) ? rest.nodes.filter((n) => typeof n === "string" && own.has(n)) : [];
    return { ...rest, nodes };
  }
  if (type === "progress_state") {
    const nodes = rest.nodes !== null && typeof rest.nodes === "object" ? (rest.nodes as Record<string, unknown>) : {};
    const kept = Object.fromEntries(Object.entries(nodes).filter(([id]) => own.has(id)));
    if (Object.keys(kept).length === 0) return undefined;
    return { ...rest, nodes: kept };
  }
  // executing, progress, executed: about one node; `executing` with node null is the end of the segment, not of the client's prompt.
  const node = rest.node;
  if (typeof node !== "string" || !own.has(node)) return undefined;
  return rest;
}

/** True for ComfyUI's out-of-memory errors (torch's OutOfMemoryError, "CUDA out of memory", …). */
export function isOutOfMemory(exceptionType: unknown, message: unknown): boolean {
  const text = `${String(exceptionType ?? "")} ${String(message ?? "")}`;
  return /OutOfMemory|out of memory/i.test(text);
}

/** An `execution_error` as one line: node, class, exception type and message (ComfyUI's tips left out). */
export function describeExecutionError(data: Readonly<Record<string, unknown>>): { message: string; oom: boolean } {
  const oom = isOutOfMemory(data.exception_type, data.exception_message);
  const raw = String(data.exception_message ?? "").trim();
  // ComfyUI appends a paragraph of tips to an OOM's message; the first line says what happened.
  const first = raw.split("\n")[0]!.trim();
  const message =
    `node ${String(data.node_id ?? "?")} (${String(data.node_type ?? "?")}) raised ${String(data.exception_type ?? "an exception")}: ${first}` +
    (oom ? " (out of memory on the GPU: the stage needs more VRAM than the estimate, or a smaller batch)" : "");
  return { message, oom };
}

/** A 400 from `POST /prompt` as one line: the error, then each node's errors. */
export function describeRefusal(body: unknown): string {
  const b = (body ?? {}) as { error?: { type?: unknown; message?: unknown; details?: unknown }; node_errors?: Record<string, unknown> };
  const parts: string[] = [];
  if (b.error) parts.push(`${String(b.error.type ?? "error")}: ${String(b.error.message ?? "")}${b.error.details ? ` (${String(b.error.details).slice(0, 300)})` : ""}`);
  for (const [id, entry] of Object.entries(b.node_errors ?? {})) {
    const e = (entry ?? {}) as { class_type?: unknown; errors?: Array<{ type?: unknown; message?: unknown; details?: unknown }> };
    const each = (e.errors ?? []).map((x) => `${String(x.type ?? "error")}: ${String(x.message ?? "")}${x.details ? ` (${String(x.details).slice(0, 200)})` : ""}`);
    parts.push(`node ${id} (${String(e.class_type ?? "?")}): ${each.join("; ") || "invalid"}`);
  }
  return parts.join("; ") || "no reason given";
}
