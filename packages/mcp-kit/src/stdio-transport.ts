import type { Readable, Writable } from "node:stream";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/server";
import { TOOL_ERROR_META_KEY } from "./errors.js";

/** Largest single message (one line) read from stdin; a longer one is answered with `invalid_input`. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** What is kept of the start and the end of an oversize message, to say what it was and to answer it. */
const KEPT_BYTES = 8 * 1024;

export interface LineStdioTransportOptions {
  stdin?: Readable;
  stdout?: Writable;
  /** Default `DEFAULT_MAX_MESSAGE_BYTES`. */
  maxMessageBytes?: number;
}

/** A transport failure (stdin or stdout broke): the server cannot go on. */
export class TransportFailure extends Error {
  override name = "TransportFailure";
}

/**
 * MCP over stdio, one JSON-RPC message per line, with a bounded line length.
 *
 * A message longer than `maxMessageBytes` is not buffered: its bytes are skipped up to the end of its
 * line, keeping only its start and end, and the request is answered as a tool error (`invalid_input`,
 * naming the field being sent and the limit) or a JSON-RPC error; the server stays up. Messages that fit
 * reach the tools, whose schemas bound every field and say which one is too long. A line that is not JSON
 * is answered with a JSON-RPC parse error. Only a failure of stdin or stdout ends the transport with an
 * error (`onerror` receives a `TransportFailure`).
 */
export class LineStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  #stdin: Readable;
  #stdout: Writable;
  #max: number;
  #chunks: Buffer[] = [];
  #size = 0;
  /** Set while skipping an oversize line: its start, its last bytes, and how long it is so far. */
  #oversize: { head: Buffer; tail: Buffer; bytes: number } | undefined;
  #started = false;
  #closed = false;

  constructor(options: LineStdioTransportOptions = {}) {
    this.#stdin = options.stdin ?? process.stdin;
    this.#stdout = options.stdout ?? process.stdout;
    this.#max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error("LineStdioTransport already started");
    this.#started = true;
    this.#stdin.on("data", this.#onData);
    this.#stdin.on("error", this.#onStdinError);
    this.#stdin.on("end", this.#onEnd);
    this.#stdin.on("close", this.#onEnd);
    this.#stdout.on("error", this.#onStdoutError);
    if (this.#stdin.readableEnded || this.#stdin.destroyed) setImmediate(this.#onEnd);
  }

  #onData = (chunk: Buffer | string) => {
    let buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    while (buf.length > 0) {
      const nl = buf.indexOf(0x0a);
      const part = nl === -1 ? buf : buf.subarray(0, nl);
      this.#append(part);
      if (nl === -1) break;
      this.#endLine();
      buf = buf.subarray(nl + 1);
    }
  };

  #append(part: Buffer): void {
    if (part.length === 0) return;
    if (this.#oversize) {
      const o = this.#oversize;
      o.bytes += part.length;
      o.tail = Buffer.concat([o.tail, part]).subarray(-KEPT_BYTES);
      return;
    }
    if (this.#size + part.length > this.#max) {
      const line = Buffer.concat([...this.#chunks, part]);
      this.#oversize = {
        head: Buffer.from(line.subarray(0, KEPT_BYTES)),
        tail: Buffer.from(line.subarray(-KEPT_BYTES)),
        bytes: line.length,
      };
      this.#chunks = [];
      this.#size = 0;
      return;
    }
    this.#chunks.push(part);
    this.#size += part.length;
  }

  #endLine(): void {
    if (this.#oversize) {
      const o = this.#oversize;
      this.#oversize = undefined;
      this.#answerOversize(o.head.toString("utf8"), o.tail.toString("utf8"), o.bytes);
      return;
    }
    const line = Buffer.concat(this.#chunks).toString("utf8").replace(/\r$/, "");
    this.#chunks = [];
    this.#size = 0;
    if (line.trim() === "") return;
    let message: JSONRPCMessage;
    try {
      message = JSON.parse(line) as JSONRPCMessage;
    } catch (err) {
      void this.send({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32700, message: `Parse error: ${(err as Error).message}` },
      } as unknown as JSONRPCMessage).catch(() => undefined);
      return;
    }
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      void this.send({
        jsonrpc: "2.0",
        id: null,
        error: { code: -32600, message: "Invalid Request: a message must be a JSON object" },
      } as unknown as JSONRPCMessage).catch(() => undefined);
      return;
    }
    this.onmessage?.(message);
  }

  /** Answers a message too long to read, from what its start and end say it was. */
  #answerOversize(head: string, tail: string, bytes: number): void {
    const limit = `${formatBytes(this.#max)} (${this.#max} bytes)`;
    const method = /"method"\s*:\s*"([^"]{1,100})"/.exec(head)?.[1];
    const id = requestId(head, tail);
    // A notification has no id and gets no answer.
    if (id === undefined) return;
    if (method === "tools/call") {
      const tool = /"name"\s*:\s*"([^"]{1,200})"/.exec(head)?.[1] ?? "the tool";
      const field = openField(head);
      const where = field ? `the argument "${field}"` : "its arguments";
      const message = `the request to ${tool} is ${formatBytes(bytes)}, more than the ${limit} one message may have; ${where} is too large. Send less (store large content in a file and pass its path), or split it across calls.`;
      const body = {
        code: "invalid_input",
        message,
        details: { bytes, limitBytes: this.#max, ...(field ? { field } : {}) },
      };
      void this.send({
        jsonrpc: "2.0",
        id,
        result: {
          isError: true,
          content: [{ type: "text", text: `invalid_input: ${message}` }],
          _meta: { [TOOL_ERROR_META_KEY]: body },
        },
      } as unknown as JSONRPCMessage).catch(() => undefined);
      return;
    }
    void this.send({
      jsonrpc: "2.0",
      id,
      error: {
        code: -32600,
        message: `invalid_input: the ${method ?? "request"} message is ${formatBytes(bytes)}, more than the ${limit} one message may have`,
      },
    } as unknown as JSONRPCMessage).catch(() => undefined);
  }

  #onStdinError = (err: Error) => {
    this.onerror?.(new TransportFailure(`stdin failed: ${err.message}`, { cause: err }));
    void this.close();
  };

  #onStdoutError = (err: Error) => {
    if (this.#closed) return;
    this.onerror?.(new TransportFailure(`stdout failed: ${err.message}`, { cause: err }));
    void this.close();
  };

  #onEnd = () => {
    void this.close();
  };

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stdin.off("data", this.#onData);
    this.#stdin.off("error", this.#onStdinError);
    this.#stdin.off("end", this.#onEnd);
    this.#stdin.off("close", this.#onEnd);
    if (this.#stdin.listenerCount("data") === 0) this.#stdin.pause();
    this.#chunks = [];
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("the stdio transport is closed"));
    return new Promise((resolve, reject) => {
      const json = `${JSON.stringify(message)}\n`;
      if (this.#stdout.write(json, (err) => (err ? reject(err) : undefined))) resolve();
      else this.#stdout.once("drain", () => resolve());
    });
  }
}

/** The request id: the v1 and v2 clients put it after the params, so it is usually at the very end. */
function requestId(head: string, tail: string): string | number | undefined {
  const pattern = /"id"\s*:\s*(-?\d{1,16}|"(?:[^"\\]|\\.){0,200}")\s*[,}]/g;
  const pick = (text: string, last: boolean): string | number | undefined => {
    let found: string | undefined;
    for (const m of text.matchAll(pattern)) {
      found = m[1];
      if (!last) break;
    }
    if (found === undefined) return undefined;
    return found.startsWith('"') ? (JSON.parse(found) as string) : Number(found);
  };
  // The top-level id is the last one in the tail (the object ends with it), or the first one in the head.
  return /"id"\s*:\s*[^,}]+}\s*$/.test(tail) ? pick(tail, true) : pick(head, false);
}

/** The argument whose value is still open where the kept start of a message ends: the one that is too long. */
function openField(head: string): string | undefined {
  const args = head.indexOf('"arguments"');
  if (args === -1) return undefined;
  let field: string | undefined;
  for (const m of head.slice(args).matchAll(/"([A-Za-z0-9_]{1,64})"\s*:\s*/g)) field = m[1];
  return field === "arguments" ? undefined : field;
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(n % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} bytes`;
}
