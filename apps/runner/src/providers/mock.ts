import { randomId } from "@loominal/protocol";
import {
  abortableSleep,
  type ConversationMessage,
  type Provider,
  ProviderError,
  type ProviderRequest,
  type ProviderResponse,
  type ToolCall,
  type ToolResult,
} from "./types.js";

export interface MockSettings {
  latencyMs: number;
  jitterMs: number;
  /** Share of calls answered like a 429, before any sleep. */
  rate429: number;
  /** Share of calls answered like a 500, before any sleep. */
  rate500: number;
  /** Random source in [0, 1) (tests pass a seeded one). */
  random?: () => number;
}

/** The scripted models the mock knows. */
export const MOCK_MODELS = ["generic", "researcher", "editor", "evaluator"] as const;

/**
 * A provider that answers from scripts. Latency is `latencyMs + uniform(0, jitterMs)`; 429 and 500 are
 * injected at the given rates before the sleep, shaped like the real APIs' errors. A script steps by the
 * number of tool results in the conversation; the circuit models read their circuit id from the prompt
 * ("Your circuit_id is cN.").
 */
export class MockProvider implements Provider {
  readonly kind = "mock";
  #s: MockSettings;
  #random: () => number;

  constructor(settings: MockSettings) {
    this.#s = settings;
    this.#random = settings.random ?? Math.random;
  }

  async complete(req: ProviderRequest): Promise<ProviderResponse> {
    const roll = this.#random();
    if (roll < this.#s.rate429) {
      throw new ProviderError(
        "rate_limited",
        "mock: HTTP 429: rate_limit_error: Number of requests has exceeded your rate limit",
        {
          status: 429,
        },
      );
    }
    if (roll < this.#s.rate429 + this.#s.rate500) {
      throw new ProviderError("outage", "mock: HTTP 500: api_error: Internal server error", { status: 500 });
    }
    const delay = this.#s.latencyMs + this.#random() * this.#s.jitterMs;
    if (delay > 0) await abortableSleep(delay, req.signal);
    const script = SCRIPTS[req.model as (typeof MOCK_MODELS)[number]];
    if (!script) {
      throw new ProviderError(
        "permanent",
        `mock: HTTP 404: not_found_error: model ${req.model} does not exist; the mock knows ${MOCK_MODELS.join(", ")}`,
        { status: 404 },
      );
    }
    const prompt = firstPrompt(req.messages);
    const results = toolResults(req.messages);
    const step = script(prompt, results);
    const inputChars = JSON.stringify(req.messages).length + req.system.length;
    return {
      text: step.text ?? "",
      toolCalls: (step.calls ?? []).map(([name, input]) => ({
        id: `toolu_${randomId().slice(0, 24)}`,
        name,
        input,
      })),
      stopReason: step.calls && step.calls.length > 0 ? "tool_use" : "end_turn",
      usage: { inputTokens: Math.ceil(inputChars / 4), outputTokens: 8 + 4 * (step.calls?.length ?? 0) },
    };
  }
}

interface Step {
  text?: string;
  calls?: Array<[string, Record<string, unknown>]>;
}

type Script = (prompt: string, results: ToolResult[]) => Step;

function firstPrompt(messages: ConversationMessage[]): string {
  const m = messages.find((x) => x.role === "user");
  return m?.role === "user" ? m.text : "";
}

function toolResults(messages: ConversationMessage[]): ToolResult[] {
  return messages.flatMap((m) => (m.role === "tool" ? m.results : []));
}

function circuitId(prompt: string): string {
  const m = /circuit_id is ([A-Za-z0-9_-]+)/.exec(prompt);
  if (!m?.[1]) {
    throw new ProviderError(
      "permanent",
      'mock: HTTP 400: invalid_request_error: the prompt has no "circuit_id is <id>"',
      {
        status: 400,
      },
    );
  }
  return m[1];
}

/** Ends the turn when the last tool result was an error, as a model would give up. */
function failedStep(results: ToolResult[]): Step | undefined {
  const last = results.at(-1);
  return last?.isError
    ? { text: `Stopping: the tool ${last.name} failed: ${JSON.stringify(last.output)}` }
    : undefined;
}

const SCRIPTS: Record<(typeof MOCK_MODELS)[number], Script> = {
  generic(prompt, results) {
    const n = Number(/\[tools:(\d+)\]/.exec(prompt)?.[1] ?? 0);
    if (/\[loop\]/.test(prompt)) return { calls: [["memory_get", { key: `loop-${results.length}` }]] };
    if (n > 0 && results.length === 0) {
      return {
        calls: Array.from(
          { length: n },
          (_, i) => ["memory_get", { key: `k${i}` }] as [string, Record<string, unknown>],
        ),
      };
    }
    return { text: `Done: ${prompt.slice(0, 200)}` };
  },
  researcher(prompt, results) {
    const c = circuitId(prompt);
    const failed = failedStep(results);
    if (failed) return failed;
    switch (results.length) {
      case 0:
        return {
          calls: [
            [
              "memory_set",
              {
                key: `${c}-research`,
                value: { circuit: c, findings: [`finding 1 of ${c}`, `finding 2 of ${c}`] },
              },
            ],
          ],
        };
      case 1:
        return {
          calls: [["channel_publish", { topic: `research-done/${c}`, message: { key: `${c}-research` } }]],
        };
      default:
        return { text: `Research for ${c} stored and announced.` };
    }
  },
  editor(prompt, results) {
    const c = circuitId(prompt);
    const failed = failedStep(results);
    if (failed) return failed;
    switch (results.length) {
      case 0:
        return { calls: [["channel_subscribe", { topic: `research-done/${c}`, timeout_ms: 60_000 }]] };
      case 1:
        return { calls: [["memory_get", { key: `${c}-research` }]] };
      case 2: {
        const research = (results[1]?.output as { value?: unknown } | undefined)?.value;
        return {
          calls: [["memory_set", { key: `${c}-research-edited`, value: { edited: true, from: research } }]],
        };
      }
      case 3:
        return {
          calls: [
            ["channel_publish", { topic: `editing-done/${c}`, message: { key: `${c}-research-edited` } }],
          ],
        };
      default:
        return { text: `Edit of ${c} stored and announced.` };
    }
  },
  evaluator(prompt, results) {
    const c = circuitId(prompt);
    const failed = failedStep(results);
    if (failed) return failed;
    switch (results.length) {
      case 0:
        return { calls: [["channel_subscribe", { topic: `editing-done/${c}`, timeout_ms: 60_000 }]] };
      case 1:
        return {
          calls: [
            ["memory_get", { key: `${c}-research` }],
            ["memory_get", { key: `${c}-research-edited` }],
          ],
        };
      case 3:
        return {
          calls: [
            [
              "memory_set",
              {
                key: `${c}-research-scored`,
                value: { score: 0.8, rationale: `edit of ${c} keeps every finding` },
              },
            ],
          ],
        };
      case 4: {
        const editorRunId = (results[0]?.output as { run_id?: unknown } | undefined)?.run_id;
        return {
          calls: [
            [
              "evaluation_submit",
              { run_id: editorRunId, score: 0.8, rationale: `edit of ${c} keeps every finding` },
            ],
          ],
        };
      }
      default:
        return { text: `Evaluation of ${c} submitted.` };
    }
  },
};

export type { ToolCall };
