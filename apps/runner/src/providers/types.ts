/** One tool call the model asked for. */
export interface ToolCall {
  id: string;
  name: string;
  input: Record<string, unknown>;
}

/** What a tool call gave back, in the order of the calls. */
export interface ToolResult {
  id: string;
  name: string;
  output: unknown;
  isError: boolean;
}

/** The conversation as the loop keeps it; each provider translates it to its wire format. */
export type ConversationMessage =
  | { role: "user"; text: string }
  | { role: "assistant"; text: string; toolCalls: ToolCall[] }
  | { role: "tool"; results: ToolResult[] };

/** A tool as offered to the model: its input as JSON Schema. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

export interface ProviderRequest {
  model: string;
  system: string;
  messages: ConversationMessage[];
  tools: ToolSpec[];
  maxTokens: number;
  signal: AbortSignal;
}

export interface ProviderResponse {
  text: string;
  toolCalls: ToolCall[];
  stopReason: "end_turn" | "tool_use" | "max_tokens";
  usage: Usage;
}

/** One model endpoint. `complete` throws ProviderError for anything but a usable answer. */
export interface Provider {
  /** `mock`, `anthropic` or `openai` (for events and metrics). */
  readonly kind: string;
  complete(request: ProviderRequest): Promise<ProviderResponse>;
}

/**
 * How the loop treats a failure: `rate_limited` (429) is retried with backoff and never counts against the
 * provider; `outage` (5xx, 529, transport errors) is retried then falls back; `permanent` (other 4xx, an
 * unreadable answer) fails the run.
 */
export type ProviderErrorKind = "rate_limited" | "outage" | "permanent";

export class ProviderError extends Error {
  override name = "ProviderError";
  readonly kind: ProviderErrorKind;
  readonly status: number | undefined;
  /** From Retry-After, when the provider sent one. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: ProviderErrorKind,
    message: string,
    options: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The error kind an HTTP status means. */
export function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 429) return "rate_limited";
  if (status >= 500 || status === 408) return "outage";
  return "permanent";
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Sleeps, or rejects with the signal's reason when it aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
