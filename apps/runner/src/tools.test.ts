import { Fabric } from "@loominal/fabric";
import { randomId } from "@loominal/protocol";
import { eventually, NatsServer, TcpProxy } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOOL_NAMES } from "./agents.js";
import { openStores, type RunnerStores } from "./cluster/stores.js";
import { loadRunnerConfig } from "./env.js";
import { ToolFailure } from "./loop.js";
import { RunnerTools } from "./tools.js";

let server: NatsServer;
let fabric: Fabric;
let stores: RunnerStores;
let tools: RunnerTools;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
  stores = await openStores(fabric, loadRunnerConfig({}));
  tools = new RunnerTools({ fabric, memory: stores.memory, evals: stores.evals });
});
afterAll(async () => {
  await fabric?.close();
  await server?.stop();
});

function run(overrides: { user_id?: string; tenant_id?: string | null } = {}) {
  return {
    run_id: randomId(),
    agent: "test",
    user_id: overrides.user_id ?? "alice",
    tenant_id: overrides.tenant_id ?? null,
  };
}

const signal = new AbortController().signal;
const call = (name: string, input: Record<string, unknown>) => ({ id: randomId(), name, input });

describe("agent tools on NATS", () => {
  it("channel_subscribe never misses a publish that races it (1,000 rounds)", async () => {
    const publisher = tools.forRun(run(), TOOL_NAMES);
    const subscriber = tools.forRun(run(), TOOL_NAMES);
    let missed = 0;
    for (let i = 0; i < 1_000; i++) {
      const topic = `race/${i}`;
      // The publish lands at a random point of the subscriber's read-then-wait.
      const sub = subscriber.run(call("channel_subscribe", { topic, timeout_ms: 5_000 }), signal);
      const delay = Math.random() < 0.5 ? Promise.resolve() : new Promise((r) => setImmediate(r));
      await delay;
      await publisher.run(call("channel_publish", { topic, message: { i } }), signal);
      const r = await sub;
      if (r.isError || (r.output as { message: { i: number } }).message.i !== i) missed++;
    }
    expect(missed).toBe(0);
  });

  it("channel_subscribe finds a message published while its connection was away (no core delivery)", async () => {
    const proxy = await TcpProxy.start(server.port);
    const away = await Fabric.connect({ nats: { servers: [proxy.url] } });
    try {
      const awayStores = await openStores(away, loadRunnerConfig({}));
      const awayTools = new RunnerTools({ fabric: away, memory: awayStores.memory, evals: awayStores.evals });
      const topic = `away/${randomId().slice(0, 8)}`;
      const waiting = awayTools
        .forRun(run(), TOOL_NAMES)
        .run(call("channel_subscribe", { topic, timeout_ms: 20_000 }), signal);
      // Its subscription is gone with its connection; the publish is stored but reaches no subscriber.
      proxy.down();
      await eventually(() => expect(away.state).not.toBe("connected"));
      await tools.forRun(run(), TOOL_NAMES).run(call("channel_publish", { topic, message: "late" }), signal);
      proxy.up();
      const r = await waiting;
      expect(r.isError).toBe(false);
      expect(r.output).toMatchObject({ topic, message: "late" });
    } finally {
      await away.close();
      await proxy.close();
    }
  });

  it("channel_subscribe returns a message published before it, carries the publisher's run id, and pages by seq", async () => {
    const a = run();
    const box = tools.forRun(a, TOOL_NAMES);
    await box.run(call("channel_publish", { topic: "t/1", message: "first" }), signal);
    await box.run(call("channel_publish", { topic: "t/1", message: "second" }), signal);
    const first = await box.run(call("channel_subscribe", { topic: "t/1", timeout_ms: 100 }), signal);
    expect(first.output).toMatchObject({ message: "first", run_id: a.run_id });
    const seq = (first.output as { seq: number }).seq;
    const second = await box.run(
      call("channel_subscribe", { topic: "t/1", after_seq: seq, timeout_ms: 100 }),
      signal,
    );
    expect(second.output).toMatchObject({ message: "second" });
    const none = await box.run(
      call("channel_subscribe", {
        topic: "t/1",
        after_seq: (second.output as { seq: number }).seq,
        timeout_ms: 50,
      }),
      signal,
    );
    expect(none).toMatchObject({ isError: true });
    // Another user's runs do not share the topic.
    const other = tools.forRun(run({ user_id: "bob" }), TOOL_NAMES);
    expect(
      await other.run(call("channel_subscribe", { topic: "t/1", timeout_ms: 50 }), signal),
    ).toMatchObject({ isError: true });
  });

  it("memory_set is versioned per user or tenant, and expected_version refuses a stale write", async () => {
    const box = tools.forRun(run({ tenant_id: "acme" }), TOOL_NAMES);
    expect((await box.run(call("memory_set", { key: "k", value: 1 }), signal)).output).toEqual({
      key: "k",
      version: 1,
    });
    expect((await box.run(call("memory_set", { key: "k", value: 2 }), signal)).output).toEqual({
      key: "k",
      version: 2,
    });
    const stale = await box.run(call("memory_set", { key: "k", value: 3, expected_version: 1 }), signal);
    expect(stale).toMatchObject({ isError: true, output: expect.stringContaining("version 2") });
    expect((await box.run(call("memory_get", { key: "k" }), signal)).output).toMatchObject({
      value: 2,
      version: 2,
    });
    expect((await box.run(call("memory_get", { key: "k", scope: "tenant" }), signal)).output).toMatchObject({
      found: false,
    });
    await box.run(call("memory_set", { key: "k", value: "t", scope: "tenant" }), signal);
    const bob = tools.forRun(run({ user_id: "bob", tenant_id: "acme" }), TOOL_NAMES);
    expect((await bob.run(call("memory_get", { key: "k", scope: "tenant" }), signal)).output).toMatchObject({
      value: "t",
    });
    expect((await bob.run(call("memory_get", { key: "k" }), signal)).output).toMatchObject({ found: false });
  });

  it("evaluation_submit records against a run; bad input and unknown tools are errors the model sees", async () => {
    const target = randomId();
    const box = tools.forRun(run(), ["evaluation_submit", "memory_get"]);
    const r = await box.run(
      call("evaluation_submit", { run_id: target, score: 0.5, rationale: "ok" }),
      signal,
    );
    expect(r.isError).toBe(false);
    expect(await tools.evaluationsOf(target)).toMatchObject([{ run_id: target, score: 0.5 }]);
    expect(
      await box.run(call("evaluation_submit", { run_id: "x", score: 2, rationale: "" }), signal),
    ).toMatchObject({
      isError: true,
      output: expect.stringMatching(/run_id.*score/s),
    });
    expect(await box.run(call("memory_set", { key: "k", value: 1 }), signal)).toMatchObject({
      isError: true,
      output: expect.stringContaining("unknown tool memory_set"),
    });
  });

  it("a write NATS does not confirm is a ToolFailure, never a success", async () => {
    const own = await Fabric.connect({ nats: { servers: [server.url] } });
    const ownStores = await openStores(own, loadRunnerConfig({}));
    const box = new RunnerTools({ fabric: own, memory: ownStores.memory, evals: ownStores.evals }).forRun(
      run(),
      TOOL_NAMES,
    );
    await own.close();
    await expect(box.run(call("memory_set", { key: "k2", value: 1 }), signal)).rejects.toBeInstanceOf(
      ToolFailure,
    );
    await expect(box.run(call("channel_publish", { topic: "x", message: 1 }), signal)).rejects.toBeInstanceOf(
      ToolFailure,
    );
  });
});
