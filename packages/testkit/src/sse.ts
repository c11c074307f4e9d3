export interface ServerSentEvent {
  id?: string;
  event: string;
  /** The `data` field parsed as JSON (the raw text when it is not JSON). */
  data: unknown;
}

export interface CollectEventsOptions {
  headers?: Record<string, string>;
  /** Stop once this says so (checked after every event). */
  until?: (events: ServerSentEvent[]) => boolean;
  /** Stop after this long whatever came, in ms (default 20,000). */
  timeoutMs?: number;
}

/** Splits one SSE block (`id:`, `event:`, `data:` lines) into an event; comments-only blocks give none. */
function parseBlock(block: string): ServerSentEvent | undefined {
  let id: string | undefined;
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return undefined;
  const text = data.join("\n");
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { ...(id !== undefined ? { id } : {}), event, data: parsed };
}

/**
 * Opens a server-sent event stream and collects its events until `until` says stop, the server ends
 * the stream, or the time is up. Resolves with the response status and the events read.
 */
export async function collectServerSentEvents(
  url: string,
  options: CollectEventsOptions = {},
): Promise<{ status: number; contentType: string; events: ServerSentEvent[] }> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), options.timeoutMs ?? 20_000);
  const events: ServerSentEvent[] = [];
  let status = 0;
  let contentType = "";
  try {
    const res = await fetch(url, { headers: options.headers ?? {}, signal: ctl.signal });
    status = res.status;
    contentType = res.headers.get("content-type") ?? "";
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      return { status, contentType, events };
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    while (!options.until?.(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const e = parseBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (e) events.push(e);
        end = buffer.indexOf("\n\n");
      }
    }
    await reader.cancel().catch(() => undefined);
  } catch (err) {
    if (!(err instanceof Error && err.name === "AbortError")) throw err;
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return { status, contentType, events };
}
