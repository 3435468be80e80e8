/** A reader of server-sent events (the agent's `GET /v1/runs/{id}/events`), as the HTML standard parses them. */

export interface ServerEvent {
  /** The `id:` field, the last one seen when the event has none (what Last-Event-ID resumes after). */
  readonly id: string | undefined;
  /** The `event:` field; "message" when absent. */
  readonly type: string;
  readonly data: string;
}

/** Yields each event of a byte stream; comment lines (`: keep-alive`) are skipped. */
export async function* readServerEvents(stream: AsyncIterable<Buffer | string>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let lastId: string | undefined;
  let type = "";
  let data: string[] = [];
  let hasData = false;
  const take = function* (line: string): Generator<ServerEvent> {
    if (line === "") {
      if (hasData) yield { id: lastId, type: type || "message", data: data.join("\n") };
      type = "";
      data = [];
      hasData = false;
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") {
      data.push(value);
      hasData = true;
    } else if (field === "id" && !value.includes("\u0000")) lastId = value;
  };
  for await (const chunk of stream) {
    buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    // Lines end with \n, \r\n or \r; a \r at the end of the buffer may be the first half of \r\n.
    let match: RegExpExecArray | null;
    const lineEnd = /\r\n|\n|\r(?!$)/g;
    let consumed = 0;
    while ((match = lineEnd.exec(buffer)) !== null) {
      yield* take(buffer.slice(consumed, match.index));
      consumed = match.index + match[0].length;
    }
    buffer = buffer.slice(consumed);
  }
  // An event not closed by a blank line when the stream ends is dropped, as the standard says.
}
