import { afterEach, describe, expect, it } from "vitest";
import { type ChainEntry, runAgentLoop, type ToolBox } from "../loop.js";
import { AnthropicProvider } from "./anthropic.js";
import {
  anthropicError,
  anthropicMessage,
  FakeApi,
  openAiCompletion,
  openAiError,
} from "./fake-servers.test-helper.js";
import { OpenAiProvider } from "./openai.js";
import { ProviderError, type ProviderRequest, parseRetryAfter } from "./types.js";

const apis: FakeApi[] = [];
afterEach(async () => {
  await Promise.all(apis.splice(0).map((a) => a.close()));
});
async function fake(answer: ConstructorParameters<typeof Object>[0]): Promise<FakeApi> {
  const api = await FakeApi.start(answer as Parameters<typeof FakeApi.start>[0]);
  apis.push(api);
  return api;
}

function request(overrides: Partial<ProviderRequest> = {}): ProviderRequest {
  return {
    model: "m",
    system: "be brief",
    messages: [{ role: "user", text: "hi" }],
    tools: [],
    maxTokens: 256,
    signal: new AbortController().signal,
    ...overrides,
  };
}

async function providerError(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error("expected a ProviderError");
}

/** A tool box whose one tool, `lookup`, answers with its input reversed. */
const lookupTools: ToolBox = {
  specs: [
    {
      name: "lookup",
      description: "Looks a word up.",
      inputSchema: { type: "object", properties: { word: { type: "string" } }, required: ["word"] },
    },
  ],
  async run(call) {
    return { output: { meaning: String(call.input.word).split("").reverse().join("") }, isError: false };
  },
};

function loop(chain: ChainEntry[], tools: ToolBox = lookupTools) {
  const events: Array<[string, Record<string, unknown>]> = [];
  return {
    events,
    result: runAgentLoop({
      prompt: "define abc",
      system: "sys",
      chain,
      tools,
      emit: (t, d) => void events.push([t, d]),
      signal: new AbortController().signal,
      maxIterations: 8,
      toolConcurrency: 4,
      retryBaseMs: 1,
      maxRetries: 2,
      maxFallbacks: 3,
    }),
  };
}

describe("anthropic provider against a local Messages API", () => {
  it("runs a tool-use loop: tool_use blocks out, tool_result blocks back", async () => {
    const api = await fake((_req: unknown, i: number) =>
      i === 0
        ? {
            status: 200,
            body: anthropicMessage(
              [
                { type: "text", text: "Let me look." },
                { type: "tool_use", id: "toolu_1", name: "lookup", input: { word: "abc" } },
              ],
              "tool_use",
            ),
          }
        : { status: 200, body: anthropicMessage([{ type: "text", text: "It means cba." }], "end_turn") },
    );
    const provider = new AnthropicProvider({ apiKey: "sk-ant-test", baseUrl: api.url });
    const { result, events } = loop([
      { provider, model: "claude-test", maxTokens: 512, label: "anthropic:claude-test" },
    ]);
    const r = await result;
    expect(r).toMatchObject({
      status: "completed",
      stopReason: "end_turn",
      usage: { inputTokens: 24, outputTokens: 14 },
    });
    expect(api.requests).toHaveLength(2);
    const first = api.requests[0];
    expect(first?.url).toBe("/v1/messages");
    expect(first?.headers["x-api-key"]).toBe("sk-ant-test");
    expect(first?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(first?.body).toMatchObject({
      model: "claude-test",
      max_tokens: 512,
      system: "sys",
      messages: [{ role: "user", content: [{ type: "text", text: "define abc" }] }],
      tools: [{ name: "lookup", input_schema: { type: "object" } }],
    });
    const second = api.requests[1]?.body as { messages: unknown[] };
    expect(second.messages[1]).toEqual({
      role: "assistant",
      content: [
        { type: "text", text: "Let me look." },
        { type: "tool_use", id: "toolu_1", name: "lookup", input: { word: "abc" } },
      ],
    });
    expect(second.messages[2]).toEqual({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: "toolu_1", content: JSON.stringify({ meaning: "cba" }) }],
    });
    expect(events.map(([t]) => t)).toEqual(["text", "usage", "tool_call", "tool_result", "text", "usage"]);
  });

  it("classifies 429 (with Retry-After), 529 overloaded, 500, 400 and a refused connection", async () => {
    const answers = [
      { status: 429, headers: { "retry-after": "3" }, body: anthropicError("rate_limit_error", "slow down") },
      { status: 529, body: anthropicError("overloaded_error", "Overloaded") },
      { status: 500, body: anthropicError("api_error", "Internal server error") },
      { status: 400, body: anthropicError("invalid_request_error", "max_tokens: too large") },
    ];
    const api = await fake((_r: unknown, i: number) => answers[i]);
    const url = api.url;
    const p = new AnthropicProvider({ apiKey: "k", baseUrl: url });
    const e429 = await providerError(p.complete(request()));
    expect(e429).toMatchObject({ kind: "rate_limited", status: 429, retryAfterMs: 3000 });
    expect(e429.message).toContain("rate_limit_error: slow down");
    expect(await providerError(p.complete(request()))).toMatchObject({ kind: "outage", status: 529 });
    expect(await providerError(p.complete(request()))).toMatchObject({ kind: "outage", status: 500 });
    const e400 = await providerError(p.complete(request()));
    expect(e400).toMatchObject({ kind: "permanent", status: 400 });
    expect(e400.message).not.toContain('k"');
    await api.close();
    expect(await providerError(p.complete(request()))).toMatchObject({ kind: "outage" });
    expect(
      await providerError(new AnthropicProvider({ apiKey: undefined, baseUrl: url }).complete(request())),
    ).toMatchObject({
      kind: "permanent",
    });
  });

  it("a 529 storm on anthropic falls back to the openai provider and the run completes", async () => {
    const down = await fake(() => ({ status: 529, body: anthropicError("overloaded_error", "Overloaded") }));
    const up = await fake(() => ({ status: 200, body: openAiCompletion({ content: "fine" }, "stop") }));
    const { result, events } = loop([
      {
        provider: new AnthropicProvider({ apiKey: "k", baseUrl: down.url }),
        model: "c",
        maxTokens: 64,
        label: "anthropic:c",
      },
      {
        provider: new OpenAiProvider({ apiKey: undefined, baseUrl: up.url }),
        model: "g",
        maxTokens: 64,
        label: "openai:g",
      },
    ]);
    expect(await result).toMatchObject({ status: "completed", stopReason: "end_turn" });
    expect(down.requests).toHaveLength(3);
    expect(events.filter(([t]) => t === "retry").map(([, d]) => d.attempt)).toEqual([1, 2]);
    expect(events.find(([t]) => t === "fallback")?.[1]).toMatchObject({
      from: "anthropic:c",
      to: "openai:g",
    });
  });
});

describe("openai provider against a local Chat Completions API", () => {
  it("runs a tool-use loop with function tool calls and tool messages", async () => {
    const api = await fake((_r: unknown, i: number) =>
      i === 0
        ? {
            status: 200,
            body: openAiCompletion(
              {
                content: null,
                tool_calls: [
                  {
                    id: "call_1",
                    type: "function",
                    function: { name: "lookup", arguments: '{"word":"abc"}' },
                  },
                  {
                    id: "call_2",
                    type: "function",
                    function: { name: "lookup", arguments: '{"word":"xyz"}' },
                  },
                ],
              },
              "tool_calls",
            ),
          }
        : { status: 200, body: openAiCompletion({ content: "cba and zyx" }, "stop") },
    );
    const provider = new OpenAiProvider({ apiKey: "sk-test", baseUrl: `${api.url}/v1` });
    const { result } = loop([{ provider, model: "gpt-test", maxTokens: 100, label: "openai:gpt-test" }]);
    expect(await result).toMatchObject({ status: "completed", usage: { inputTokens: 24, outputTokens: 14 } });
    expect(api.requests[0]?.url).toBe("/v1/chat/completions");
    expect(api.requests[0]?.headers.authorization).toBe("Bearer sk-test");
    expect(api.requests[0]?.body).toMatchObject({
      model: "gpt-test",
      messages: [
        { role: "system", content: "sys" },
        { role: "user", content: "define abc" },
      ],
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
    });
    const second = api.requests[1]?.body as { messages: unknown[] };
    expect(second.messages.slice(2)).toEqual([
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"word":"abc"}' } },
          { id: "call_2", type: "function", function: { name: "lookup", arguments: '{"word":"xyz"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: JSON.stringify({ meaning: "cba" }) },
      { role: "tool", tool_call_id: "call_2", content: JSON.stringify({ meaning: "zyx" }) },
    ]);
  });

  it("classifies 429 with Retry-After, 503 and 401; a 429 storm is retried until it passes", async () => {
    const api = await fake((_r: unknown, i: number) =>
      i < 3
        ? {
            status: 429,
            headers: { "retry-after": "0" },
            body: openAiError("requests", "Rate limit reached", "rate_limit_exceeded"),
          }
        : i === 3
          ? { status: 503, body: openAiError("server_error", "The engine is currently overloaded") }
          : i === 4
            ? {
                status: 401,
                body: openAiError("invalid_request_error", "Incorrect API key provided", "invalid_api_key"),
              }
            : { status: 200, body: openAiCompletion({ content: "ok" }, "stop") },
    );
    const p = new OpenAiProvider({ apiKey: "k", baseUrl: api.url });
    expect(await providerError(p.complete(request()))).toMatchObject({
      kind: "rate_limited",
      retryAfterMs: 0,
    });
    // Two more 429s, then the loop must not give up or fall back: it retries the same provider.
    const { result, events } = loop([{ provider: p, model: "g", maxTokens: 10, label: "openai:g" }]);
    const r = await result;
    expect(r).toMatchObject({ status: "failed", stopReason: "provider_error" });
    expect(events.filter(([t]) => t === "retry").map(([, d]) => d.reason)).toEqual([
      "rate_limited",
      "rate_limited",
      "outage",
    ]);
    expect(events.some(([t]) => t === "fallback")).toBe(false);
    expect(r.error).toContain("HTTP 401");
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("2")).toBe(2000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("Thu, 01 Jan 1970 00:00:10 GMT", 4_000)).toBe(6_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});
