import { z } from "zod";
import { postJson } from "./http.js";
import {
  type ConversationMessage,
  type Provider,
  ProviderError,
  type ProviderRequest,
  type ProviderResponse,
} from "./types.js";

const responseSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullable().optional(),
          tool_calls: z
            .array(
              z.object({
                id: z.string(),
                type: z.string().optional(),
                function: z.object({ name: z.string(), arguments: z.string() }),
              }),
            )
            .nullable()
            .optional(),
        }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number() }).loose().optional(),
});

export interface OpenAiOptions {
  apiKey: string | undefined;
  baseUrl: string;
}

/**
 * Chat Completions with tools (`POST <base>/chat/completions`): OpenAI, or any compatible endpoint such
 * as a local model server. The key is optional because local servers often take none.
 */
export class OpenAiProvider implements Provider {
  readonly kind = "openai";
  #options: OpenAiOptions;

  constructor(options: OpenAiOptions) {
    this.#options = options;
  }

  async complete(req: ProviderRequest): Promise<ProviderResponse> {
    const body = {
      model: req.model,
      max_tokens: req.maxTokens,
      messages: [...(req.system ? [{ role: "system", content: req.system }] : []), ...toWire(req.messages)],
      ...(req.tools.length > 0
        ? {
            tools: req.tools.map((t) => ({
              type: "function",
              function: { name: t.name, description: t.description, parameters: t.inputSchema },
            })),
          }
        : {}),
    };
    const raw = await postJson(
      "openai",
      `${this.#options.baseUrl.replace(/\/+$/, "")}/chat/completions`,
      this.#options.apiKey ? { authorization: `Bearer ${this.#options.apiKey}` } : {},
      body,
      req.signal,
    );
    const parsed = responseSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ProviderError("permanent", `openai: unexpected answer: ${parsed.error.issues[0]?.message}`);
    }
    const choice = parsed.data.choices[0];
    if (!choice) throw new ProviderError("permanent", "openai: the answer has no choices");
    const toolCalls: ProviderResponse["toolCalls"] = [];
    for (const c of choice.message.tool_calls ?? []) {
      let input: unknown;
      try {
        input = c.function.arguments.trim() === "" ? {} : JSON.parse(c.function.arguments);
      } catch {
        throw new ProviderError("permanent", `openai: tool call ${c.id} has arguments that are not JSON`);
      }
      if (input === null || typeof input !== "object" || Array.isArray(input)) {
        throw new ProviderError("permanent", `openai: tool call ${c.id} arguments are not a JSON object`);
      }
      toolCalls.push({ id: c.id, name: c.function.name, input: input as Record<string, unknown> });
    }
    const usage = parsed.data.usage;
    return {
      text: choice.message.content ?? "",
      toolCalls,
      stopReason:
        toolCalls.length > 0 || choice.finish_reason === "tool_calls"
          ? "tool_use"
          : choice.finish_reason === "length"
            ? "max_tokens"
            : "end_turn",
      usage: { inputTokens: usage?.prompt_tokens ?? 0, outputTokens: usage?.completion_tokens ?? 0 },
    };
  }
}

function toWire(messages: ConversationMessage[]): unknown[] {
  return messages.flatMap((m): unknown[] => {
    switch (m.role) {
      case "user":
        return [{ role: "user", content: m.text }];
      case "assistant":
        return [
          {
            role: "assistant",
            content: m.text || null,
            ...(m.toolCalls.length > 0
              ? {
                  tool_calls: m.toolCalls.map((c) => ({
                    id: c.id,
                    type: "function",
                    function: { name: c.name, arguments: JSON.stringify(c.input) },
                  })),
                }
              : {}),
          },
        ];
      default:
        return m.results.map((r) => ({
          role: "tool",
          tool_call_id: r.id,
          content: JSON.stringify(r.isError ? { error: r.output } : r.output),
        }));
    }
  });
}
