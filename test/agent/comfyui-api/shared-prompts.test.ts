/**
 * Every real ComfyUI prompt of the shared data set goes through `POST /comfyui/prompt` and the `/ws`
 * flow of one client, to the final `executing` of each, and has a history entry (stages simulated).
 */
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { sharedDataDir } from "../../support/shared.ts";
import { useAgent } from "../service/agent-fixture.ts";
import { tenant } from "../service/harness.ts";

const dir = sharedDataDir("comfyui");
const files = dir === null ? [] : readdirSync(dir).filter((f) => f.endsWith(".json")).sort();

describe.skipIf(dir === null)("the shared ComfyUI prompts through /comfyui/prompt and /ws", () => {
  const fixture = useAgent(
    { devices: Array.from({ length: 8 }, (_, i) => ({ id: `gpu${i}`, node: "n1", memoryMiB: 81_920 })), tenants: [tenant("studio")] },
    ["--simulated-time-scale", "0.0005"],
  );

  it("queues each, follows each to its final executing, and reads each history entry", async () => {
    const token = fixture.platform.tokens.studio!;
    const base = `${fixture.agent.url}/comfyui`;
    const clientId = randomUUID();
    const ws = new WebSocket(`${base.replace("http", "ws")}/ws?clientId=${clientId}`, { headers: { authorization: `Bearer ${token}` } });
    const byPrompt = new Map<string, string[]>();
    const finished = new Set<string>();
    let onFinish = () => {};
    ws.on("message", (data, binary) => {
      if (binary) return;
      const m = JSON.parse(String(data)) as { type: string; data: { prompt_id?: string; node?: string | null } };
      const id = m.data.prompt_id;
      if (id === undefined) return;
      byPrompt.set(id, [...(byPrompt.get(id) ?? []), m.type]);
      if (m.type === "executing" && m.data.node === null) {
        finished.add(id);
        onFinish();
      }
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });

    const queued: Array<{ file: string; id: string }> = [];
    const refused: Array<{ file: string; type: string }> = [];
    for (const file of files) {
      const doc = JSON.parse(readFileSync(join(dir!, file), "utf8")) as Record<string, unknown>;
      const prompt = typeof doc.prompt === "object" && doc.prompt !== null && !("class_type" in doc.prompt) ? doc.prompt : doc;
      const res = await fetch(`${base}/prompt`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ prompt, client_id: clientId }) });
      const body = (await res.json()) as { prompt_id?: string; error?: { type: string; message: string } };
      if (res.status === 200) queued.push({ file, id: body.prompt_id! });
      else {
        // A refusal is ComfyUI-shaped and says why (e.g. a graph no GPU of the pool could hold).
        expect(res.status, `${file}: ${JSON.stringify(body)}`).toBe(400);
        expect(body.error?.type).toMatch(/^(invalid_prompt|prompt_outputs_failed_validation|prompt_no_outputs)$/);
        expect(body.error?.message.length).toBeGreaterThan(0);
        refused.push({ file, type: body.error!.type });
      }
    }
    // The data set holds one graph no 80 GiB GPU can hold; every other prompt is accepted.
    expect(refused.length).toBeLessThanOrEqual(1);
    expect(queued.length).toBeGreaterThanOrEqual(files.length - 1);

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`unfinished: ${queued.filter((q) => !finished.has(q.id)).map((q) => q.file).join(", ")}`)), 150_000);
      onFinish = () => {
        if (queued.every((q) => finished.has(q.id))) {
          clearTimeout(timer);
          resolve();
        }
      };
      onFinish();
    });
    ws.close();

    for (const { file, id } of queued) {
      const types = byPrompt.get(id)!;
      expect(types[0], file).toBe("execution_start");
      expect(types.indexOf("execution_success"), file).toBeGreaterThan(0);
      expect(types.at(-1), file).toBe("executing");
      const history = (await (await fetch(`${base}/history/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, { status: { status_str: string } }>;
      expect(history[id]?.status.status_str, file).toBe("success");
    }
  }, 240_000);
});
