/**
 * A valid ComfyUI API-format prompt of `nodes` nodes in one chain (an empty latent, then upscales of
 * the previous node's latent): the largest graph a client may send, for the event-loop tests and bench.
 */
export function chainPrompt(nodes: number): Record<string, unknown> {
  const prompt: Record<string, unknown> = { "0": { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } } };
  for (let i = 1; i < nodes; i++) prompt[String(i)] = { class_type: "LatentUpscaleBy", inputs: { samples: [String(i - 1), 0], scale_by: 1 } };
  return prompt;
}
