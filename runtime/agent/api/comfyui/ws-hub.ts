/**
 * ComfyUI's `/ws`: each socket is a client id of a tenant. A prompt's events go to the client that
 * queued it, in ComfyUI's order: execution_start, execution_cached, executing per node, progress,
 * executed, then execution_success (or execution_error, or execution_interrupted) and last
 * `executing` with `node: null` once the history entry can be read. The store's events are the
 * record (stages start and end, the run ends); the live relay adds what the store does not keep:
 * the node a server is executing, sampler progress and previews.
 */
import type { FastifyBaseLogger } from "fastify";
import type { WebSocket } from "ws";
import type { ComfyRelay, ComfyRelayMessage, ComfyRelayPreview } from "../../executors/comfyui/contract.ts";
import type { EventRecord, RunDetail, Store } from "../../store/types.ts";
import type { RunQueue } from "../../service/run-queue.ts";
import { errorMessage, failureOf, type ComfyPrompts } from "./prompts.ts";

type JsonObject = Record<string, unknown>;

/** The largest upload a client may send, for `/features` and the feature-flags handshake. */
export const MAX_UPLOAD_BYTES = 32 * 1024 * 1024;

interface Client {
  readonly tenant: string;
  readonly clientId: string;
  readonly socket: WebSocket;
  /** Negotiated with the feature-flags handshake: previews then carry their metadata (binary event 4). */
  previewMetadata: boolean;
  readonly connectedAtMs: number;
}

interface Watch {
  readonly tenant: string;
  readonly runId: string;
  readonly clientId: string | null;
  lastEvent: number;
  started: boolean;
  lastExecuting: string | null;
  readonly sentExecuted: Set<string>;
  pumping: Promise<void> | null;
  again: boolean;
  done: boolean;
}

const PING_MS = 30_000;
/** Cluster mode: how many of a tenant's newest runs each look for prompts queued elsewhere reads, and how far before a socket's connection it looks. */
const ADOPT_WINDOW = 200;
const ADOPT_SLACK_MS = 5_000;

export class ComfyWsHub {
  private readonly clients = new Map<string, Client>();
  private readonly byTenant = new Map<string, Set<Client>>();
  private readonly statusDue = new Map<string, Promise<void>>();
  /** Cluster mode: the client id of each open prompt seen (null: none), and the tenants being looked at. */
  private readonly clientOf = new Map<string, string | null>();
  private readonly adopting = new Set<string>();
  private readonly ended = new Set<string>();
  private readonly watches = new Map<string, Watch>();
  private readonly ping: NodeJS.Timeout;
  private readonly poll: NodeJS.Timeout | undefined;
  private readonly onChange = (runId: string) => this.pump(runId);
  private readonly onMessage = (m: ComfyRelayMessage) => this.relayMessage(m);
  private readonly onPreview = (p: ComfyRelayPreview) => this.relayPreview(p);

  constructor(
    private readonly store: Store,
    private readonly loop: RunQueue,
    private readonly prompts: ComfyPrompts,
    private readonly relay: ComfyRelay | undefined,
    private readonly logger: FastifyBaseLogger,
    pollMs: number | undefined,
  ) {
    loop.changes.on("run", this.onChange);
    relay?.on("message", this.onMessage);
    relay?.on("preview", this.onPreview);
    this.ping = setInterval(() => {
      for (const c of this.clients.values()) if (c.socket.readyState === c.socket.OPEN) c.socket.ping();
    }, PING_MS);
    this.ping.unref();
    // A control plane of a cluster hears of runs another one leads only through the store.
    if (pollMs !== undefined) {
      this.poll = setInterval(() => {
        for (const runId of this.watches.keys()) this.pump(runId);
        for (const tenant of this.byTenant.keys()) this.adoptSoon(tenant);
      }, pollMs);
      this.poll.unref();
    }
  }

  close(): void {
    this.loop.changes.off("run", this.onChange);
    this.relay?.off("message", this.onMessage);
    this.relay?.off("preview", this.onPreview);
    clearInterval(this.ping);
    if (this.poll) clearInterval(this.poll);
    for (const c of this.clients.values()) c.socket.close(1001, "the agent is stopping");
    this.clients.clear();
    this.byTenant.clear();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** A socket joins as `clientId` (a new one replaces an older socket of that id, as in ComfyUI) and hears the queue's status. */
  async connect(socket: WebSocket, tenant: string, clientId: string): Promise<void> {
    const key = clientKey(tenant, clientId);
    const previous = this.clients.get(key);
    if (previous !== undefined && previous.socket !== socket) previous.socket.close(1000, "replaced by a newer connection of this client id");
    const client: Client = { tenant, clientId, socket, previewMetadata: false, connectedAtMs: Date.now() };
    this.clients.set(key, client);
    let sockets = this.byTenant.get(tenant);
    if (sockets === undefined) this.byTenant.set(tenant, (sockets = new Set()));
    sockets.add(client);
    socket.on("close", () => {
      if (this.clients.get(key) === client) this.clients.delete(key);
      sockets.delete(client);
    });
    let first = true;
    socket.on("message", (data, isBinary) => {
      // Only the client's first text frame may be the feature-flags handshake; other client text is ignored.
      if (!first || isBinary) return;
      first = false;
      try {
        const message = JSON.parse(String(data)) as { type?: unknown; data?: { supports_preview_metadata?: unknown } };
        if (message.type !== "feature_flags") return;
        client.previewMetadata = message.data?.supports_preview_metadata === true;
        send(socket, "feature_flags", { supports_preview_metadata: true, max_upload_size: MAX_UPLOAD_BYTES });
      } catch {
        // Not JSON: ignored, as ComfyUI ignores it.
      }
    });
    send(socket, "status", { status: { exec_info: { queue_remaining: await this.queueRemaining(tenant) } }, sid: clientId });
    if (this.poll !== undefined) this.adoptSoon(tenant);
    for (const watch of this.watches.values()) {
      if (watch.tenant === tenant && watch.clientId === clientId && watch.lastExecuting !== null) send(socket, "executing", { node: watch.lastExecuting });
    }
  }

  /**
   * Cluster mode: a client's socket and its `POST /prompt` may reach different control planes. The
   * tenant's prompts queued elsewhere since its sockets here connected are looked at (each prompt's
   * document once), and those of a client connected here are followed from their first event.
   */
  private adoptSoon(tenant: string): void {
    if (this.adopting.has(tenant)) return;
    this.adopting.add(tenant);
    void this.adopt(tenant)
      .catch((err: unknown) => this.logger.warn({ err, tenant }, "the tenant's open ComfyUI prompts could not be read"))
      .finally(() => this.adopting.delete(tenant));
  }

  private async adopt(tenant: string): Promise<void> {
    const sockets = this.byTenant.get(tenant);
    if (sockets === undefined || sockets.size === 0) return;
    const clientIds = new Set([...sockets].map((c) => c.clientId));
    // Prompts queued since the tenant's first socket here connected (less a little for clocks), finished
    // or not: a short prompt may start and end between two looks, and its client still waits for its end.
    const since = Math.min(...[...sockets].map((c) => c.connectedAtMs)) - ADOPT_SLACK_MS;
    const recent = await this.store.listRuns(tenant, { limit: ADOPT_WINDOW });
    for (const run of recent) {
      if (run.format !== "comfyui" || this.watches.has(run.id) || this.ended.has(run.id) || Date.parse(run.createdAt) < since) continue;
      let clientId = this.clientOf.get(run.id);
      if (clientId === undefined) {
        const detail = await this.store.getRun(tenant, run.id);
        const doc = detail && (await this.prompts.document(detail));
        clientId = doc?.client_id ?? null;
        this.clientOf.set(run.id, clientId);
        if (this.clientOf.size > 10_000) this.clientOf.delete(this.clientOf.keys().next().value as string);
      }
      if (clientId !== null && clientIds.has(clientId)) this.watch(tenant, run.id, clientId);
    }
  }

  /** Follows a prompt just queued: its events go to its client (when it named one). */
  watch(tenant: string, runId: string, clientId: string | null): void {
    if (this.ended.has(runId)) return;
    if (!this.watches.has(runId)) {
      this.watches.set(runId, { tenant, runId, clientId, lastEvent: 0, started: false, lastExecuting: null, sentExecuted: new Set(), pumping: null, again: false, done: false });
    }
    void this.broadcastStatus(tenant);
    this.pump(runId);
  }

  /**
   * Tells every socket of the tenant how many of its runs are queued or running. Changes that arrive
   * together (a burst of prompts) are told once: one count, one serialized message for every socket.
   */
  broadcastStatus(tenant: string): Promise<void> {
    const due = this.statusDue.get(tenant);
    if (due !== undefined) return due;
    const next = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      this.statusDue.delete(tenant);
      const sockets = this.byTenant.get(tenant);
      if (sockets === undefined || sockets.size === 0) return;
      const remaining = await this.queueRemaining(tenant).catch(() => undefined);
      if (remaining === undefined) return;
      const text = JSON.stringify({ type: "status", data: { status: { exec_info: { queue_remaining: remaining } } } });
      for (const c of sockets) if (c.socket.readyState === c.socket.OPEN) c.socket.send(text);
    });
    this.statusDue.set(tenant, next);
    return next;
  }

  /** The tenant's runs queued or running: ComfyUI's queue_remaining (its own queue, here the tenant's share of the fabric's). */
  async queueRemaining(tenant: string): Promise<number> {
    return (await this.store.queueDepth()).byTenant[tenant]?.activeRuns ?? 0;
  }

  private pump(runId: string): void {
    const watch = this.watches.get(runId);
    if (watch === undefined || watch.done) return;
    if (watch.pumping !== null) {
      watch.again = true;
      return;
    }
    watch.pumping = this.drain(watch)
      .catch((err: unknown) => this.logger.warn({ err, runId }, "a ComfyUI prompt's events could not be followed"))
      .finally(() => {
        watch.pumping = null;
        if (watch.again && !watch.done) {
          watch.again = false;
          this.pump(runId);
        }
      });
  }

  private async drain(watch: Watch): Promise<void> {
    const events = (await this.store.eventsSince(watch.tenant, watch.runId, watch.lastEvent, 1000)) ?? [];
    if (events.length === 0) return;
    let detail: RunDetail | undefined;
    const load = async () => (detail ??= await this.store.getRun(watch.tenant, watch.runId));
    for (const event of events) {
      watch.lastEvent = event.id;
      await this.translate(watch, event, load);
      if (watch.done) return;
    }
    if (events.length === 1000) watch.again = true;
  }

  private async translate(watch: Watch, event: EventRecord, load: () => Promise<RunDetail | undefined>): Promise<void> {
    const promptId = watch.runId;
    const timestamp = Date.parse(event.at);
    const to = (type: string, data: JsonObject) => this.toClient(watch, type, data);
    if ((event.type === "run.running" || event.type === "stage.running") && !watch.started) {
      watch.started = true;
      to("execution_start", { prompt_id: promptId, timestamp });
      to("execution_cached", { nodes: [], prompt_id: promptId, timestamp });
    }
    if (event.type === "stage.running" && event.stageId !== null) {
      const node = (await load())?.stages.find((s) => s.stageId === event.stageId)?.spec.comfyNodes?.[0];
      if (node !== undefined) this.executing(watch, node);
    } else if (event.type === "stage.succeeded") {
      const detail = await load();
      if (detail === undefined) return;
      const outputs = await this.prompts.outputs(detail);
      const nodes = new Set(detail.stages.find((s) => s.stageId === event.stageId)?.spec.comfyNodes ?? []);
      for (const [node, output] of Object.entries(outputs.nodes)) {
        if (!nodes.has(node) || watch.sentExecuted.has(node)) continue;
        watch.sentExecuted.add(node);
        to("executed", { node, display_node: node, output, prompt_id: promptId });
      }
    } else if (event.type === "run.succeeded" || event.type === "run.failed" || event.type === "run.cancelled") {
      watch.done = true;
      this.watches.delete(watch.runId);
      // Never followed twice (a look at open prompts may have begun before this one ended).
      this.ended.add(watch.runId);
      if (this.ended.size > 10_000) this.ended.delete(this.ended.values().next().value as string);
      const detail = await load();
      const doc = detail && (await this.prompts.document(detail));
      if (event.type === "run.succeeded") to("execution_success", { prompt_id: promptId, timestamp });
      else if (detail !== undefined && doc !== undefined) {
        const failure = failureOf(detail, doc);
        const executed = (await this.prompts.outputs(detail)).executed;
        if (event.type === "run.cancelled") {
          to("execution_interrupted", { prompt_id: promptId, node_id: failure.node, node_type: failure.classType, executed, timestamp });
        } else to("execution_error", { ...errorMessage(promptId, failure, executed), timestamp });
      }
      // As ComfyUI's task_done: the queue's status, then (the history entry is built from the store,
      // where the run is now over) the final `executing` that clients wait for.
      await this.broadcastStatus(watch.tenant).catch(() => undefined);
      to("executing", { node: null, prompt_id: promptId });
    }
  }

  private executing(watch: Watch, node: string): void {
    if (watch.lastExecuting === node) return;
    watch.lastExecuting = node;
    this.toClient(watch, "executing", { node, display_node: node, prompt_id: watch.runId });
  }

  /**
   * A server's live event can come before the store says the stage runs (a worker's reaches the leader
   * apart from its "started" report): the prompt has started, and ComfyUI's order wants that said first.
   */
  private startedByRelay(watch: Watch): void {
    if (watch.started) return;
    watch.started = true;
    const timestamp = Date.now();
    this.toClient(watch, "execution_start", { prompt_id: watch.runId, timestamp });
    this.toClient(watch, "execution_cached", { nodes: [], prompt_id: watch.runId, timestamp });
  }

  private relayMessage(m: ComfyRelayMessage): void {
    const watch = this.watches.get(m.runId);
    if (watch === undefined) return;
    this.startedByRelay(watch);
    if (m.type === "executing") {
      if (typeof m.data.node === "string") this.executing(watch, m.data.node);
    } else if (m.type === "progress" || m.type === "progress_state") {
      // Progress goes to every socket of the tenant when the prompt named no client, as ComfyUI does.
      const data = { ...m.data, prompt_id: watch.runId };
      if (watch.clientId !== null) this.toClient(watch, m.type, data);
      else for (const c of this.clients.values()) if (c.tenant === watch.tenant) send(c.socket, m.type, data);
    }
    // `executed` is sent from the committed manifest, naming files as this API serves them.
  }

  private relayPreview(p: ComfyRelayPreview): void {
    const watch = this.watches.get(p.runId);
    if (watch === undefined) return;
    this.startedByRelay(watch);
    const targets = [...this.clients.values()].filter((c) => c.tenant === watch.tenant && (watch.clientId === null || c.clientId === watch.clientId));
    for (const c of targets) {
      const frame = previewFrame(p, watch.runId, c.previewMetadata);
      if (frame !== undefined && c.socket.readyState === c.socket.OPEN) c.socket.send(frame, { binary: true });
    }
  }

  private toClient(watch: Watch, type: string, data: JsonObject): void {
    if (watch.clientId === null) return;
    const client = this.clients.get(clientKey(watch.tenant, watch.clientId));
    if (client !== undefined) send(client.socket, type, data);
  }
}

function clientKey(tenant: string, clientId: string): string {
  return `${tenant}\u0000${clientId}`;
}

function send(socket: WebSocket, type: string, data: JsonObject): void {
  if (socket.readyState !== socket.OPEN) return;
  socket.send(JSON.stringify({ type, data }));
}

/**
 * A preview as the client reads it: event 1 (4-byte format, then the image) for every client; event 4
 * (metadata naming this prompt, then the image) to clients that asked for metadata.
 */
export function previewFrame(p: ComfyRelayPreview, promptId: string, withMetadata: boolean): Buffer | undefined {
  let image: Buffer;
  let format: number;
  let meta: JsonObject = {};
  if (p.eventType === 1) {
    if (p.payload.length < 4) return undefined;
    format = p.payload.readUInt32BE(0);
    image = p.payload.subarray(4);
  } else if (p.eventType === 4) {
    if (p.payload.length < 4) return undefined;
    const length = p.payload.readUInt32BE(0);
    if (p.payload.length < 4 + length) return undefined;
    try {
      meta = JSON.parse(p.payload.subarray(4, 4 + length).toString("utf8")) as JsonObject;
    } catch {
      return undefined;
    }
    image = p.payload.subarray(4 + length);
    format = meta.image_type === "image/png" ? 2 : 1;
  } else return undefined;
  const head = Buffer.alloc(4);
  if (!withMetadata) {
    head.writeUInt32BE(1);
    const fmt = Buffer.alloc(4);
    fmt.writeUInt32BE(format);
    return Buffer.concat([head, fmt, image]);
  }
  head.writeUInt32BE(4);
  const node = typeof meta.node_id === "string" ? meta.node_id : null;
  const metadata = Buffer.from(
    JSON.stringify({ node_id: node, prompt_id: promptId, display_node_id: node, parent_node_id: null, real_node_id: node, image_type: format === 2 ? "image/png" : "image/jpeg" }),
    "utf8",
  );
  const length = Buffer.alloc(4);
  length.writeUInt32BE(metadata.length);
  return Buffer.concat([head, length, metadata, image]);
}
