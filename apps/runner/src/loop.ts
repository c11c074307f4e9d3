import {
  abortableSleep,
  type ConversationMessage,
  type Provider,
  ProviderError,
  type ProviderResponse,
  type ToolCall,
  type ToolResult,
  type ToolSpec,
  type Usage,
} from "./providers/types.js";

/** The events a run emits, in order; each is stored on the run's event stream with a sequence. */
export type RunEventType =
  | "started"
  | "text"
  | "tool_call"
  | "tool_result"
  | "usage"
  | "retry"
  | "fallback"
  | "paused"
  | "resumed"
  | "done"
  | "error";

export type EmitEvent = (type: RunEventType, data: Record<string, unknown>) => void | Promise<void>;

/** One provider of an agent's chain, resolved. */
export interface ChainEntry {
  provider: Provider;
  model: string;
  maxTokens: number;
  /** `anthropic:claude-…` — shown in retry and fallback events. */
  label: string;
}

/** Tools as the loop sees them. `run` throws ToolFailure when a tool could not do its work at all. */
export interface ToolBox {
  specs: ToolSpec[];
  run(call: ToolCall, signal: AbortSignal): Promise<{ output: unknown; isError: boolean }>;
}

/**
 * A tool whose write (or read) failed in the infrastructure: the run fails with stop reason `tool_error`,
 * so a failed write is never reported as a success.
 */
export class ToolFailure extends Error {
  override name = "ToolFailure";
}

/** Why a run stopped before its end of turn: the abort reason of its signal. */
export class RunStop extends Error {
  override name = "RunStop";
  /** `cancelled`, `failed`: the status the run ends in. */
  readonly status: "cancelled" | "failed";
  readonly stopReason: string;
  constructor(status: "cancelled" | "failed", stopReason: string) {
    super(stopReason);
    this.status = status;
    this.stopReason = stopReason;
  }
}

export interface LoopOptions {
  prompt: string;
  system: string;
  chain: ChainEntry[];
  tools: ToolBox;
  emit: EmitEvent;
  /** Aborted with a RunStop to cancel (or fail) the run; checked at every await. */
  signal: AbortSignal;
  /** Resolves when the run may go on; called at every iteration boundary (pause/resume). */
  pauseGate?: (signal: AbortSignal) => Promise<void>;
  /**
   * Called before every provider call and every tool call: resolves when the step may start, throws (a
   * RunStop) when the run must not do anything more. The replica's fence (see service.ts).
   */
  stepGuard?: (signal: AbortSignal) => Promise<void>;
  maxIterations: number;
  toolConcurrency: number;
  /** Outage retries: retryBaseMs × 3ⁿ, at most maxRetries per provider, then the next provider. */
  retryBaseMs: number;
  maxRetries: number;
  maxFallbacks: number;
  /** 429s in a row on one call before the run gives up (they never count as outages). Default 20. */
  maxRateLimitRetries?: number;
  /** Upper bound of one 429 backoff when the provider sent no Retry-After, ms. Default 5 s. */
  maxRateLimitDelayMs?: number;
}

export interface LoopResult {
  status: "completed" | "failed" | "cancelled";
  stopReason: string;
  error?: string;
  usage: Usage;
  iterations: number;
}

/**
 * The agent loop: provider call → the tool calls it asked for (in parallel, at most toolConcurrency,
 * results in call order) → repeat, until end of turn, maxIterations, cancel, or a failure.
 */
export async function runAgentLoop(o: LoopOptions): Promise<LoopResult> {
  const usage: Usage = { inputTokens: 0, outputTokens: 0 };
  const messages: ConversationMessage[] = [{ role: "user", text: o.prompt }];
  let chainIndex = 0;
  let fallbacks = 0;
  let iterations = 0;
  try {
    for (;;) {
      if (iterations >= o.maxIterations) {
        return { status: "completed", stopReason: "max_iterations", usage, iterations };
      }
      checkStop(o.signal);
      if (o.pauseGate) await o.pauseGate(o.signal);
      iterations++;
      // One provider call, with retries and fallbacks.
      let response: ProviderResponse | undefined;
      let outageRetries = 0;
      let rateRetries = 0;
      while (!response) {
        const entry = o.chain[chainIndex];
        if (!entry) throw new Error("no provider left in the chain");
        try {
          if (o.stepGuard) await o.stepGuard(o.signal);
          response = await entry.provider.complete({
            model: entry.model,
            system: o.system,
            messages,
            tools: o.tools.specs,
            maxTokens: entry.maxTokens,
            signal: o.signal,
          });
        } catch (err) {
          checkStop(o.signal);
          if (!(err instanceof ProviderError)) throw err;
          if (err.kind === "permanent") {
            return { status: "failed", stopReason: "provider_error", error: err.message, usage, iterations };
          }
          if (err.kind === "rate_limited") {
            rateRetries++;
            if (rateRetries > (o.maxRateLimitRetries ?? 20)) {
              return { status: "failed", stopReason: "rate_limited", error: err.message, usage, iterations };
            }
            const ceiling = Math.min(o.maxRateLimitDelayMs ?? 5_000, o.retryBaseMs * 2 ** (rateRetries - 1));
            const delay = err.retryAfterMs ?? Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
            await o.emit("retry", {
              provider: entry.label,
              reason: "rate_limited",
              status: err.status ?? 429,
              attempt: rateRetries,
              delay_ms: delay,
            });
            await abortableSleep(delay, o.signal);
            continue;
          }
          // An outage: retry this provider, then fall back to the next one.
          if (outageRetries < o.maxRetries) {
            const delay = o.retryBaseMs * 3 ** outageRetries;
            outageRetries++;
            await o.emit("retry", {
              provider: entry.label,
              reason: "outage",
              status: err.status ?? null,
              attempt: outageRetries,
              delay_ms: delay,
              error: err.message,
            });
            await abortableSleep(delay, o.signal);
            continue;
          }
          const next = o.chain[chainIndex + 1];
          if (!next || fallbacks >= o.maxFallbacks) {
            return {
              status: "failed",
              stopReason: "provider_unavailable",
              error: err.message,
              usage,
              iterations,
            };
          }
          fallbacks++;
          chainIndex++;
          outageRetries = 0;
          await o.emit("fallback", { from: entry.label, to: next.label, reason: err.message, fallbacks });
        }
      }
      usage.inputTokens += response.usage.inputTokens;
      usage.outputTokens += response.usage.outputTokens;
      if (response.text) await o.emit("text", { text: response.text });
      await o.emit("usage", {
        input_tokens: response.usage.inputTokens,
        output_tokens: response.usage.outputTokens,
        total_input_tokens: usage.inputTokens,
        total_output_tokens: usage.outputTokens,
      });
      messages.push({ role: "assistant", text: response.text, toolCalls: response.toolCalls });
      if (response.toolCalls.length === 0) {
        return {
          status: "completed",
          stopReason: response.stopReason === "max_tokens" ? "max_tokens" : "end_turn",
          usage,
          iterations,
        };
      }
      for (const call of response.toolCalls) {
        await o.emit("tool_call", { id: call.id, name: call.name, input: call.input });
      }
      const results = await runTools(response.toolCalls, o);
      for (const r of results) {
        await o.emit("tool_result", { id: r.id, name: r.name, output: r.output, is_error: r.isError });
      }
      messages.push({ role: "tool", results });
    }
  } catch (err) {
    if (err instanceof RunStop) return { status: err.status, stopReason: err.stopReason, usage, iterations };
    if (o.signal.aborted && o.signal.reason instanceof RunStop) {
      return { status: o.signal.reason.status, stopReason: o.signal.reason.stopReason, usage, iterations };
    }
    if (err instanceof ToolFailure) {
      return { status: "failed", stopReason: "tool_error", error: err.message, usage, iterations };
    }
    return {
      status: "failed",
      stopReason: "internal_error",
      error: (err as Error).message,
      usage,
      iterations,
    };
  }
}

function checkStop(signal: AbortSignal): void {
  if (!signal.aborted) return;
  throw signal.reason instanceof RunStop ? signal.reason : new RunStop("cancelled", "cancelled");
}

/** Runs the calls at most `toolConcurrency` at a time; results keep the order of the calls. */
async function runTools(calls: ToolCall[], o: LoopOptions): Promise<ToolResult[]> {
  const results: ToolResult[] = new Array(calls.length);
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const i = next++;
      const call = calls[i] as ToolCall;
      checkStop(o.signal);
      if (o.stepGuard) await o.stepGuard(o.signal);
      const r = await o.tools.run(call, o.signal);
      results[i] = { id: call.id, name: call.name, output: r.output, isError: r.isError };
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.toolConcurrency, calls.length) }, worker));
  return results;
}
