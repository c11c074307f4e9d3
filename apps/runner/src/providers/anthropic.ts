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
  content: z.array(
    z.union([
      z.object({ type: z.literal("text"), text: z.string() }),
      z.object({
        type: z.literal("tool_use"),
        id: z.string(),
        name: z.string(),
        input: z.record(z.string(), z.unknown()),
      }),
      z.object({ type: z.string() }).loose(),
    ]),
  ),
  stop_reason: z.string().nullable(),
  usage: z.object({ input_tokens: z.number(), output_tokens: z.number() }).loose(),
});

export interface AnthropicOptions {
  apiKey: string | undefined;
  baseUrl: string;
}

/** The Anthropic Messages API (`POST /v1/messages`) with tool use. */
export class AnthropicProvider implements Provider {
  readonly kind = "anthropic";
  #options: AnthropicOptions;

  constructor(options: AnthropicOptions) {
    this.#options = options;
  }

  async complete(req: ProviderRequest): Promise<ProviderResponse> {
    if (!this.#options.apiKey) {
      throw new ProviderError(
        "permanent",
        "anthropic: no API key; set ANTHROPIC_API_KEY (or the agent's apiKeyEnv)",
      );
    }
    const body = {
      model: req.model,
      max_tokens: req.maxTokens,
      ...(req.system ? { system: req.system } : {}),
      messages: toWire(req.messages),
      ...(req.tools.length > 0
        ? {
            tools: req.tools.map((t) => ({
              name: t.name,
              description: t.description,
              input_schema: t.inputSchema,
            })),
          }
        : {}),
    };
    const raw = await postJson(
      "anthropic",
      `${this.#options.baseUrl.replace(/\/+$/, "")}/v1/messages`,
      { "x-api-key": this.#options.apiKey, "anthropic-version": "2023-06-01" },
      body,
      req.signal,
    );
    const parsed = responseSchema.safeParse(raw);
    if (!parsed.success) {
      throw new ProviderError(
        "permanent",
        `anthropic: unexpected answer: ${parsed.error.issues[0]?.message}`,
      );
    }
    const r = parsed.data;
    let text = "";
    const toolCalls: ProviderResponse["toolCalls"] = [];
    for (const block of r.content) {
      if (block.type === "text" && "text" in block && typeof block.text === "string") text += block.text;
      else if (block.type === "tool_use" && "input" in block) {
        const b = block as { id: string; name: string; input: Record<string, unknown> };
        toolCalls.push({ id: b.id, name: b.name, input: b.input });
      }
    }
    return {
      text,
      toolCalls,
      stopReason:
        r.stop_reason === "tool_use"
          ? "tool_use"
          : r.stop_reason === "max_tokens"
            ? "max_tokens"
            : "end_turn",
      usage: { inputTokens: r.usage.input_tokens, outputTokens: r.usage.output_tokens },
    };
  }
}

function toWire(messages: ConversationMessage[]): unknown[] {
  return messages.map((m) => {
    switch (m.role) {
      case "user":
        return { role: "user", content: [{ type: "text", text: m.text }] };
      case "assistant":
        return {
          role: "assistant",
          content: [
            ...(m.text ? [{ type: "text", text: m.text }] : []),
            ...m.toolCalls.map((c) => ({ type: "tool_use", id: c.id, name: c.name, input: c.input })),
          ],
        };
      default:
        return {
          role: "user",
          content: m.results.map((r) => ({
            type: "tool_result",
            tool_use_id: r.id,
            content: JSON.stringify(r.output),
            ...(r.isError ? { is_error: true } : {}),
          })),
        };
    }
  });
}
