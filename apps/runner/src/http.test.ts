import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { eventually, tempDir } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, getRun, SLOW_AGENTS } from "./cluster.test-helper.js";
import { anthropicMessage, FakeApi, openAiCompletion } from "./providers/fake-servers.test-helper.js";
import { type Replica, readSse } from "./replica.test-helper.js";

const TOKEN = "test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

let cluster: Cluster;
let r: Replica;
let openai: FakeApi;
let anthropic: FakeApi;
const dir = tempDir("runner-http-");

beforeAll(async () => {
  openai = await FakeApi.start((req) => {
    const body = req.body as { messages: Array<{ role: string }> };
    return body.messages.some((m) => m.role === "tool")
      ? { status: 200, body: openAiCompletion({ content: "stored" }, "stop") }
      : {
          status: 200,
          body: openAiCompletion(
            {
              content: null,
              tool_calls: [
                {
                  id: "call_1",
                  type: "function",
                  function: { name: "memory_set", arguments: '{"key":"oa","value":42}' },
                },
              ],
            },
            "tool_calls",
          ),
        };
  });
  anthropic = await FakeApi.start((req) => {
    const body = req.body as { messages: Array<{ role: string; content: Array<{ type: string }> }> };
    return body.messages.some((m) => m.content.some((c) => c.type === "tool_result"))
      ? { status: 200, body: anthropicMessage([{ type: "text", text: "found it" }], "end_turn") }
      : {
          status: 200,
          body: anthropicMessage(
            [{ type: "tool_use", id: "toolu_1", name: "memory_get", input: { key: "oa" } }],
            "tool_use",
          ),
        };
  });
  const agents = join(dir.path, "agents.yaml");
  writeFileSync(
    agents,
    [
      SLOW_AGENTS(100),
      "- name: oa",
      "  model: gpt-test",
      `  providers: [{ provider: openai, baseUrl: "${openai.url}/v1" }]`,
      "- name: claude",
      "  model: claude-test",
      `  providers: [{ provider: anthropic, baseUrl: "${anthropic.url}" }]`,
    ].join("\n"),
  );
  cluster = await Cluster.start({
    RUNNER_AUTH_TOKEN: TOKEN,
    RUNNER_MAX_CONCURRENT_RUNS: "2",
    RUNNER_MAX_RUNS_PER_USER: "2",
    RUNNER_QUEUE_MAX: "1",
    RUNNER_AGENTS: agents,
    ANTHROPIC_API_KEY: "sk-ant-test",
  });
  r = await cluster.replica();
});
afterAll(async () => {
  await cluster?.stop();
  await openai?.close();
  await anthropic?.close();
  dir.cleanup();
});

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return r.fetch("/v1/runs", { json: body, headers: { ...auth, ...headers } });
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

async function cancel(id: string): Promise<void> {
  await r.fetch(`/v1/runs/${id}/cancel`, { method: "POST", headers: auth });
}

describe("runner HTTP API (one replica process)", () => {
  it("needs the bearer token everywhere but /healthz and /health", async () => {
    expect((await r.fetch("/healthz")).status).toBe(200);
    const health = await r.fetch("/health");
    expect(health.status).toBe(200);
    expect(await json(health)).toMatchObject({ nats: "connected" });
    const res = await r.fetch("/v1/_state");
    expect(res.status).toBe(401);
    expect(await json(res)).toMatchObject({ code: "unauthorized" });
    expect(
      (await r.fetch("/v1/_state", { headers: { authorization: "Bearer wrong-token-000000000" } })).status,
    ).toBe(401);
    expect((await r.fetch("/v1/_state", { headers: auth })).status).toBe(200);
  });

  it("refuses bad input in admission order, naming what is wrong", async () => {
    const text = await r.fetch("/v1/runs", {
      method: "POST",
      body: "hi",
      headers: { ...auth, "content-type": "text/plain" },
    });
    expect(text.status).toBe(415);
    const broken = await r.fetch("/v1/runs", {
      method: "POST",
      body: "{",
      headers: { ...auth, "content-type": "application/json" },
    });
    expect(broken.status).toBe(400);
    expect(await json(broken)).toMatchObject({ code: "invalid_json" });
    const missing = await post({ agent: "mock-generic", prompt: "x" });
    expect(missing.status).toBe(400);
    expect((await json(missing)).error).toMatch(/user_id/);
    const badAgentId = await post({ agent: "mock-generic", prompt: "x", user_id: "u", agent_id: "a b" });
    expect((await json(badAgentId)).error).toMatch(/agent_id/);
    const huge = await post({ agent: "mock-generic", prompt: "x".repeat(1_100_000), user_id: "u" });
    expect(huge.status).toBe(413);
    const unknown = await post({ agent: "nope", prompt: "x", user_id: "u" });
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toMatchObject({ code: "unknown_agent" });
  });

  it("session lock before pause, pause before quota; quota 429 with Retry-After; backpressure when the queue is full", async () => {
    const s1 = await json(
      await post({ agent: "slow", prompt: "[loop]", user_id: "qa", session_id: "S", stream: false }),
    );
    const s2 = await json(await post({ agent: "slow", prompt: "[loop]", user_id: "qa", stream: false }));
    const over = await post({ agent: "slow", prompt: "[loop]", user_id: "qa", stream: false });
    expect(over.status).toBe(429);
    expect(over.headers.get("retry-after")).toBe("5");
    expect(await json(over)).toMatchObject({ code: "per_user_quota_exhausted", user_id: "qa", cap: 2 });
    // Two running (the cluster cap), one queued (the queue max), then backpressure.
    const queued = await json(await post({ agent: "slow", prompt: "[loop]", user_id: "qb", stream: false }));
    const full = await post({ agent: "slow", prompt: "[loop]", user_id: "qc", stream: false });
    expect(full.status).toBe(429);
    expect(await json(full)).toMatchObject({ code: "backpressure" });
    await eventually(async () => {
      const stats = await json(await r.fetch("/v1/_concurrency/stats", { headers: auth }));
      expect(stats.global).toEqual({ active: 2, queued: 1, cap: 2 });
      expect((stats.users as Record<string, unknown>).qa).toEqual({ active: 2, queued: 0, cap: 2 });
    });
    expect((await r.fetch("/v1/_pause", { method: "POST", headers: auth })).status).toBe(200);
    const busy = await post({ agent: "mock-generic", prompt: "x", user_id: "qz", session_id: "S" });
    expect(await json(busy)).toMatchObject({ code: "session_busy" });
    const paused = await post({ agent: "mock-generic", prompt: "x", user_id: "qa" });
    expect(paused.status).toBe(503);
    expect(await json(paused)).toMatchObject({ code: "runtime_paused" });
    expect((await r.fetch("/v1/_resume", { method: "POST", headers: auth })).status).toBe(200);
    for (const id of [s1.run_id, s2.run_id, queued.run_id]) await cancel(String(id));
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
  });

  it("streams a run as SSE with sequenced events; the record, replay after a seq, and the user's list agree", async () => {
    const res = await post({
      agent: "mock-generic",
      prompt: "[tools:3] hello",
      user_id: "sse",
      metadata: { k: 1 },
    });
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const events = await readSse(res);
    expect(events[0]?.event).toBe("run");
    const runId = String(events[0]?.data.run_id);
    const types = events.slice(1).map((e) => e.event);
    expect(types[0]).toBe("started");
    expect(types.filter((t) => t === "tool_call")).toHaveLength(3);
    expect(types.at(-1)).toBe("done");
    expect(events.slice(1).map((e) => e.data.seq)).toEqual(types.map((_, i) => i + 1));
    const run = await json(await r.fetch(`/v1/runs/${runId}`, { headers: auth }));
    expect(run).toMatchObject({
      run_id: runId,
      agent: "mock-generic",
      user_id: "sse",
      status: "completed",
      stop_reason: "end_turn",
      metadata: { k: 1 },
    });
    expect(run).not.toHaveProperty("admit_ack");
    const replay = await readSse(await r.fetch(`/v1/runs/${runId}/events?after=5`, { headers: auth }));
    expect(replay[0]?.data.seq).toBe(6);
    expect(replay.at(-1)?.event).toBe("done");
    const list = await json(await r.fetch("/v1/users/sse/runs", { headers: auth }));
    expect((list.runs as Array<{ run_id: string }>).map((x) => x.run_id)).toEqual([runId]);
    expect((await r.fetch("/v1/runs/0123456789abcdef0123456789abcdef", { headers: auth })).status).toBe(404);
    expect((await r.fetch("/v1/runs/nope", { headers: auth })).status).toBe(400);
  });

  it("a run past its run_timeout_seconds fails with stop reason run_timeout", async () => {
    const res = await json(
      await post({
        agent: "slow",
        prompt: "[loop]",
        user_id: "timeout",
        run_timeout_seconds: 1,
        stream: false,
      }),
    );
    const run = await eventually(async () => {
      const r2 = await json(await r.fetch(`/v1/runs/${String(res.run_id)}`, { headers: auth }));
      expect(r2.status).toBe("failed");
      return r2;
    });
    expect(run).toMatchObject({ stop_reason: "run_timeout", run_timeout_seconds: 1 });
    await eventually(async () => expect(await cluster.quotaHeld()).toBe(0));
  });

  it("a client that disconnects from the stream cancels its run", async () => {
    const ac = new AbortController();
    const res = await post({ agent: "slow", prompt: "[loop]", user_id: "leaver" }, {});
    const reader = res.body?.getReader();
    const first = new TextDecoder().decode((await reader?.read())?.value);
    const runId = /"run_id":"([0-9a-f]{32})"/.exec(first)?.[1] ?? "";
    await eventually(async () => expect((await getRun(await authed(), runId)).status).toBe("running"));
    await reader?.cancel();
    ac.abort();
    await eventually(async () =>
      expect(await json(await r.fetch(`/v1/runs/${runId}`, { headers: auth }))).toMatchObject({
        status: "cancelled",
        stop_reason: "client disconnected",
      }),
    );
  });

  it("a 429 storm (rate 0.3) completes every run by retrying; a 5xx provider falls back to the next", async () => {
    // Three at a time: the cluster cap (2) plus the queue (1).
    const ids: string[] = [];
    const runs: Array<Record<string, unknown>> = [];
    for (let wave = 0; wave < 4; wave++) {
      const waveIds = await Promise.all(
        [0, 1, 2].map(async (j) => {
          const i = wave * 3 + j;
          const res = await json(
            await post({
              agent: i % 2 ? "storm" : "flaky",
              prompt: "[tools:1]",
              user_id: `storm-${i}`,
              stream: false,
            }),
          );
          return String(res.run_id);
        }),
      );
      ids.push(...waveIds);
      runs.push(
        ...(await eventually(
          async () => {
            const all = await Promise.all(
              waveIds.map(async (id) => json(await r.fetch(`/v1/runs/${id}`, { headers: auth }))),
            );
            expect(all.map((x) => x.status)).toEqual(["completed", "completed", "completed"]);
            return all;
          },
          { timeoutMs: 30_000 },
        )),
      );
    }
    expect(runs).toHaveLength(12);
    const flaky = await readSse(await r.fetch(`/v1/runs/${ids[0]}/events`, { headers: auth }));
    expect(flaky.filter((e) => e.event === "retry")).toHaveLength(5);
    expect(flaky.find((e) => e.event === "fallback")?.data).toMatchObject({
      from: "mock:generic",
      to: "mock:generic",
    });
  });

  it("runs agents on the openai and anthropic providers (local fakes), tool use included", async () => {
    const oa = await readSse(await post({ agent: "oa", prompt: "store 42", user_id: "prov" }));
    expect(oa.at(-1)).toMatchObject({ event: "done", data: { stop_reason: "end_turn" } });
    expect(oa.find((e) => e.event === "tool_result")?.data).toMatchObject({
      name: "memory_set",
      is_error: false,
    });
    const cl = await readSse(await post({ agent: "claude", prompt: "read it", user_id: "prov" }));
    expect(cl.find((e) => e.event === "tool_result")?.data).toMatchObject({
      output: { value: 42, found: true },
    });
    expect(anthropic.requests[0]?.headers["x-api-key"]).toBe("sk-ant-test");
  });

  it("exposes Prometheus metrics of what it did", async () => {
    const text = await (await r.fetch("/metrics", { headers: auth })).text();
    expect(text).toMatch(/runner_runs_finished_total\{status="completed"\} [1-9]/);
    expect(text).toMatch(/runner_admission_refused_total\{code="per_user_quota_exhausted"\} [1-9]/);
    expect(text).toMatch(/runner_provider_retries_total\{reason="outage"\} [1-9]/);
    expect((await r.fetch("/metrics")).status).toBe(401);
  });
});

async function authed(): Promise<Replica> {
  // getRun without the token would be refused; wrap the replica's fetch with it.
  return { fetch: (path: string) => r.fetch(path, { headers: auth }) } as unknown as Replica;
}
