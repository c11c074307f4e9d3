import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: unknown;
}

/** What the fake answers: status, headers and a JSON body. */
export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  body: unknown;
}

/**
 * A local HTTP server that answers like a provider API: each request is recorded and answered by
 * `answer(request, index)`.
 */
export class FakeApi {
  readonly requests: RecordedRequest[] = [];
  #server: Server;
  #answer: (req: RecordedRequest, index: number) => FakeAnswer;

  private constructor(answer: (req: RecordedRequest, index: number) => FakeAnswer) {
    this.#answer = answer;
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(answer: (req: RecordedRequest, index: number) => FakeAnswer): Promise<FakeApi> {
    const api = new FakeApi(answer);
    await new Promise<void>((resolve) => api.#server.listen(0, "127.0.0.1", resolve));
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const recorded: RecordedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    this.requests.push(recorded);
    const a = this.#answer(recorded, this.requests.length - 1);
    res.writeHead(a.status, { "content-type": "application/json", ...(a.headers ?? {}) });
    res.end(JSON.stringify(a.body));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }
}

/** The error bodies the Anthropic API sends. */
export function anthropicError(type: string, message: string): unknown {
  return { type: "error", error: { type, message } };
}

/** An Anthropic Messages API answer. */
export function anthropicMessage(
  content: unknown[],
  stopReason: "end_turn" | "tool_use" | "max_tokens",
  usage = { input_tokens: 12, output_tokens: 7 },
): unknown {
  return {
    id: "msg_01",
    type: "message",
    role: "assistant",
    model: "claude-test",
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage,
  };
}

/** An OpenAI Chat Completions answer. */
export function openAiCompletion(
  message: { content: string | null; tool_calls?: unknown[] },
  finishReason: "stop" | "tool_calls" | "length",
  usage = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
): unknown {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1,
    model: "gpt-test",
    choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finishReason }],
    usage,
  };
}

export function openAiError(type: string, message: string, code: string | null = null): unknown {
  return { error: { message, type, param: null, code } };
}
