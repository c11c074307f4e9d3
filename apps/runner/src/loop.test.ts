import { describe, expect, it } from "vitest";
import {
  type ChainEntry,
  type LoopOptions,
  RunStop,
  runAgentLoop,
  type ToolBox,
  ToolFailure,
} from "./loop.js";
import { MockProvider, type MockSettings } from "./providers/mock.js";

function mock(settings: Partial<MockSettings> = {}, model = "generic"): ChainEntry {
  return {
    provider: new MockProvider({ latencyMs: 0, jitterMs: 0, rate429: 0, rate500: 0, ...settings }),
    model,
    maxTokens: 100,
    label: `mock:${model}`,
  };
}

/** Tools that answer after a short random delay and record how many ran at once. */
function countingTools(): ToolBox & { maxInFlight: number; calls: string[] } {
  let inFlight = 0;
  const box = {
    maxInFlight: 0,
    calls: [] as string[],
    specs: [{ name: "memory_get", description: "d", inputSchema: { type: "object" } }],
    async run(call: { name: string; input: Record<string, unknown> }) {
      inFlight++;
      box.maxInFlight = Math.max(box.maxInFlight, inFlight);
      box.calls.push(String(call.input.key));
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      inFlight--;
      return { output: { key: call.input.key }, isError: false };
    },
  };
  return box;
}

function options(
  overrides: Partial<LoopOptions>,
): LoopOptions & { events: Array<[string, Record<string, unknown>]> } {
  const events: Array<[string, Record<string, unknown>]> = [];
  return {
    events,
    prompt: "hello",
    system: "",
    chain: [mock()],
    tools: countingTools(),
    emit: (t, d) => void events.push([t, d]),
    signal: new AbortController().signal,
    maxIterations: 16,
    toolConcurrency: 8,
    retryBaseMs: 1,
    maxRetries: 5,
    maxFallbacks: 3,
    ...overrides,
  };
}

describe("agent loop", () => {
  it("runs tool calls in parallel, at most toolConcurrency at once, results in call order", async () => {
    const tools = countingTools();
    const o = options({ prompt: "[tools:12]", tools, toolConcurrency: 3 });
    const r = await runAgentLoop(o);
    expect(r).toMatchObject({ status: "completed", stopReason: "end_turn", iterations: 2 });
    expect(tools.maxInFlight).toBeLessThanOrEqual(3);
    expect(tools.maxInFlight).toBeGreaterThan(1);
    const results = o.events
      .filter(([t]) => t === "tool_result")
      .map(([, d]) => (d.output as { key: string }).key);
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => `k${i}`));
  });

  it("stops at maxIterations", async () => {
    const r = await runAgentLoop(options({ prompt: "[loop]", maxIterations: 5 }));
    expect(r).toMatchObject({ status: "completed", stopReason: "max_iterations", iterations: 5 });
  });

  it("a 429 storm (rate 0.3) is retried and every run completes, without any fallback", async () => {
    const runs = await Promise.all(
      Array.from({ length: 50 }, () => {
        const o = options({ prompt: "[tools:2]", chain: [mock({ rate429: 0.3 }), mock()] });
        return runAgentLoop(o).then((r) => ({ r, events: o.events }));
      }),
    );
    expect(runs.every(({ r }) => r.status === "completed")).toBe(true);
    const retries = runs.flatMap(({ events }) => events.filter(([t]) => t === "retry"));
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.every(([, d]) => d.reason === "rate_limited")).toBe(true);
    expect(runs.some(({ events }) => events.some(([t]) => t === "fallback"))).toBe(false);
  });

  it("5xx on every call falls back to the next provider after 5 retries (100 ms × 3ⁿ schedule)", async () => {
    const o = options({ chain: [mock({ rate500: 1 }), mock()], retryBaseMs: 1 });
    const r = await runAgentLoop(o);
    expect(r.status).toBe("completed");
    const retries = o.events.filter(([t]) => t === "retry").map(([, d]) => d.delay_ms);
    expect(retries).toEqual([1, 3, 9, 27, 81]);
    expect(o.events.filter(([t]) => t === "fallback")).toHaveLength(1);
  });

  it("fails with provider_unavailable when the chain and its fallbacks are exhausted", async () => {
    const o = options({
      chain: [mock({ rate500: 1 }), mock({ rate500: 1 })],
      maxRetries: 1,
      maxFallbacks: 3,
    });
    const r = await runAgentLoop(o);
    expect(r).toMatchObject({ status: "failed", stopReason: "provider_unavailable" });
    const limited = await runAgentLoop(
      options({ chain: [mock({ rate500: 1 }), mock()], maxRetries: 0, maxFallbacks: 0 }),
    );
    expect(limited).toMatchObject({ status: "failed", stopReason: "provider_unavailable" });
  });

  it("an unknown model is a permanent error", async () => {
    const r = await runAgentLoop(options({ chain: [mock({}, "nope")] }));
    expect(r).toMatchObject({ status: "failed", stopReason: "provider_error" });
    expect(r.error).toMatch(/model nope does not exist/);
  });

  it("a cancel during a provider call stops the run as cancelled", async () => {
    const ac = new AbortController();
    const o = options({ prompt: "[loop]", chain: [mock({ latencyMs: 50 })], signal: ac.signal });
    const running = runAgentLoop(o);
    setTimeout(() => ac.abort(new RunStop("cancelled", "cancelled: by test")), 20);
    expect(await running).toMatchObject({ status: "cancelled", stopReason: "cancelled: by test" });
  });

  it("a tool that cannot do its work fails the run with tool_error", async () => {
    const tools: ToolBox = {
      specs: [],
      run: async () => {
        throw new ToolFailure("memory_set: NATS unavailable");
      },
    };
    const r = await runAgentLoop(options({ prompt: "[tools:1]", tools }));
    expect(r).toMatchObject({
      status: "failed",
      stopReason: "tool_error",
      error: "memory_set: NATS unavailable",
    });
  });

  it("waits at the pause gate at every iteration boundary", async () => {
    let gates = 0;
    const r = await runAgentLoop(
      options({
        prompt: "[loop]",
        maxIterations: 3,
        pauseGate: async () => {
          gates++;
        },
      }),
    );
    expect(r.iterations).toBe(3);
    expect(gates).toBe(3);
  });
});
