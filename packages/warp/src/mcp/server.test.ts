import { Fabric, type LoominalConfig } from "@loominal/fabric";
import {
  connectInMemory,
  eventually,
  freePort,
  NatsServer,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warp } from "../warp.js";
import { projectConfig } from "../warp.test-helper.js";
import { createWarpServer } from "./server.js";

const MESSAGING_TOOLS = [
  "warp_handle_set",
  "warp_handle_get",
  "warp_channels_list",
  "warp_channels_send",
  "warp_channels_read",
  "warp_channels_status",
  "warp_registry_register",
  "warp_registry_discover",
  "warp_registry_get_info",
  "warp_registry_update_presence",
  "warp_registry_deregister",
  "warp_messages_send_direct",
  "warp_messages_read_direct",
];

let nats: NatsServer;
const locks = tempDir("warp-locks-");
const opened: Array<() => Promise<void>> = [];

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const close of opened.reverse()) await close();
  await nats.stop();
  locks.cleanup();
});

/** An agent as Claude Code sees it: a Warp MCP server on its own connection, reached through an MCP client. */
async function agent(config: LoominalConfig): Promise<{ client: TestClient; warp: Warp }> {
  const fabric = Fabric.start({ nats: config.nats });
  const warp = await Warp.open({ config, fabric, lockDir: locks.path });
  const client = await connectInMemory(createWarpServer(warp));
  opened.push(async () => {
    await client.close();
    await warp.close();
    await fabric.close();
  });
  return { client, warp };
}

async function ok(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  expect(r.text.length).toBeGreaterThan(0);
  return r.structured ?? {};
}

async function fails(client: TestClient, name: string, args: Record<string, unknown>, code: string) {
  const r = await client.call(name, args);
  expect(r.isError, `${name} ${JSON.stringify(args)} should fail: ${r.text}`).toBe(true);
  expect(r.structured, "an error result carries no structuredContent").toBeUndefined();
  const error = r.error as { code: string; message: string };
  expect(error?.code, r.text).toBe(code);
  expect(r.text.startsWith(`${code}:`)).toBe(true);
  return error.message;
}

async function pair() {
  const p = uniqueProjectId();
  const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
  const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
  return { alice: await agent(a.config), bob: await agent(b.config) };
}

describe("warp MCP server", () => {
  it("lists every messaging tool with an input and an output schema", async () => {
    const { alice } = await pair();
    const tools = await alice.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(MESSAGING_TOOLS));
    for (const t of tools) {
      expect(t.inputSchema, t.name).toMatchObject({ type: "object" });
      expect(t.outputSchema, t.name).toMatchObject({ type: "object" });
      // Every parameter says what it is, and names and ids carry their rule.
      const { properties = {} } = t.inputSchema as { properties?: Record<string, { description?: string }> };
      for (const [name, p] of Object.entries(properties))
        expect(p.description, `${t.name}.${name} has a description`).toBeTruthy();
    }
    const send = tools.find((t) => t.name === "warp_channels_send")?.inputSchema as {
      properties: Record<string, { pattern?: string }>;
    };
    expect(send.properties.channel?.pattern).toBe("^[a-z0-9][a-z0-9_-]{0,63}$");
  });

  it("identity: handle_set and handle_get", async () => {
    const { alice } = await pair();
    const me = await ok(alice.client, "warp_handle_get");
    expect(me.agentId).toBe(alice.warp.agentId);
    expect(me.handle).toBe("alice");
    expect(me.registered).toBe(false);
    expect(await ok(alice.client, "warp_handle_set", { handle: "alice-the-reviewer" })).toMatchObject({
      handle: "alice-the-reviewer",
    });
    expect((await ok(alice.client, "warp_handle_get")).handle).toBe("alice-the-reviewer");
    const msg = await fails(alice.client, "warp_handle_set", { handle: "Alice Smith" }, "invalid_input");
    expect(msg).toMatch(/handle/);
    await fails(alice.client, "warp_handle_set", { handle: 42 }, "invalid_input");
    await fails(alice.client, "warp_handle_set", {}, "invalid_input");
    await fails(alice.client, "warp_handle_get", { extra: true }, "invalid_input");
  });

  it("channels: list, send, read with a cursor, status", async () => {
    const { alice, bob } = await pair();
    const list = await ok(alice.client, "warp_channels_list");
    expect((list.channels as Array<{ name: string }>).map((c) => c.name)).toEqual([
      "roadmap",
      "parallel-work",
      "errors",
    ]);

    const sent = await ok(alice.client, "warp_channels_send", {
      channel: "parallel-work",
      message: "taking the parser",
    });
    expect(sent).toMatchObject({ channel: "parallel-work", scope: "team" });
    await ok(alice.client, "warp_channels_send", {
      channel: "parallel-work",
      message: "note to self",
      scope: "private",
    });

    const page = await ok(bob.client, "warp_channels_read", { channel: "parallel-work" });
    expect(page.messages).toEqual([
      expect.objectContaining({
        message: "taking the parser",
        senderHandle: "alice",
        senderId: alice.warp.agentId,
      }),
    ]);
    const cursor = page.nextCursor as number;
    await ok(alice.client, "warp_channels_send", { channel: "parallel-work", message: "parser done" });
    const next = await ok(bob.client, "warp_channels_read", { channel: "parallel-work", cursor, limit: 10 });
    expect((next.messages as Array<{ message: string }>).map((m) => m.message)).toEqual(["parser done"]);

    const status = await ok(bob.client, "warp_channels_status", { channel: "parallel-work" });
    expect(status.channels).toEqual([expect.objectContaining({ name: "parallel-work", messages: 3 })]);
    const all = await ok(bob.client, "warp_channels_status");
    expect((all.channels as unknown[]).length).toBe(3);

    // Bad input: unknown channel, invalid names, wrong types, out-of-range numbers.
    expect(
      await fails(alice.client, "warp_channels_send", { channel: "random", message: "x" }, "not_found"),
    ).toMatch(/not configured.*roadmap/);
    await fails(bob.client, "warp_channels_read", { channel: "random" }, "not_found");
    await fails(bob.client, "warp_channels_status", { channel: "random" }, "not_found");
    expect(
      await fails(alice.client, "warp_channels_send", { channel: "road.map", message: "x" }, "invalid_input"),
    ).toMatch(/channel/);
    await fails(alice.client, "warp_channels_send", { channel: "roadmap>", message: "x" }, "invalid_input");
    await fails(alice.client, "warp_channels_send", { channel: "roadmap", message: 7 }, "invalid_input");
    await fails(alice.client, "warp_channels_send", { channel: "roadmap", message: "" }, "invalid_input");
    await fails(
      alice.client,
      "warp_channels_send",
      { channel: "roadmap", message: "x", scope: "world" },
      "invalid_input",
    );
    await fails(bob.client, "warp_channels_read", { channel: "roadmap", limit: 0 }, "invalid_input");
    await fails(bob.client, "warp_channels_read", { channel: "roadmap", cursor: "abc" }, "invalid_input");
    await fails(bob.client, "warp_channels_read", { channel: ["roadmap"] }, "invalid_input");
  });

  it("registry: register, discover, get_info, update_presence, deregister", async () => {
    const { alice, bob } = await pair();
    // Missing registration.
    await fails(alice.client, "warp_registry_update_presence", { status: "busy" }, "not_registered");
    await fails(alice.client, "warp_registry_deregister", {}, "not_registered");
    await fails(bob.client, "warp_registry_get_info", { agentId: alice.warp.agentId }, "not_found");

    const reg = await ok(alice.client, "warp_registry_register", {
      agentType: "claude-code",
      capabilities: ["typescript"],
      boundaries: ["open-source"],
    });
    expect(reg.agent).toMatchObject({
      agentId: alice.warp.agentId,
      status: "idle",
      capabilities: ["typescript"],
    });
    await ok(bob.client, "warp_registry_register", { agentType: "copilot-cli", capabilities: ["python"] });

    const found = await ok(bob.client, "warp_registry_discover", { capability: "typescript" });
    expect(found).toMatchObject({ count: 1, hasMore: false, nextCursor: null });
    expect((found.agents as Array<{ agentId: string }>)[0]?.agentId).toBe(alice.warp.agentId);
    expect((await ok(bob.client, "warp_registry_discover", {})).count).toBe(2);
    expect((await ok(bob.client, "warp_registry_discover", { boundary: "corporate" })).count).toBe(1);

    const upd = await ok(alice.client, "warp_registry_update_presence", {
      status: "busy",
      currentTaskCount: 1,
    });
    expect(upd.agent).toMatchObject({ status: "busy", currentTaskCount: 1 });
    const info = await ok(bob.client, "warp_registry_get_info", { agentId: alice.warp.agentId });
    expect(info.agent).toMatchObject({ status: "busy", agentType: "claude-code" });
    expect((await ok(alice.client, "warp_handle_get")).registered).toBe(true);

    // Bad input.
    await fails(alice.client, "warp_registry_register", {}, "invalid_input");
    await fails(alice.client, "warp_registry_register", { agentType: "Claude Code" }, "invalid_input");
    await fails(
      alice.client,
      "warp_registry_register",
      { agentType: "x", capabilities: "ts" },
      "invalid_input",
    );
    await fails(
      alice.client,
      "warp_registry_register",
      { agentType: "x", maxConcurrentTasks: 0 },
      "invalid_input",
    );
    await fails(bob.client, "warp_registry_discover", { capability: "type.script" }, "invalid_input");
    await fails(bob.client, "warp_registry_discover", { status: "asleep" }, "invalid_input");
    await fails(bob.client, "warp_registry_discover", { cursor: "garbage" }, "invalid_input");
    await fails(bob.client, "warp_registry_get_info", { agentId: "alice" }, "invalid_input");
    await fails(alice.client, "warp_registry_update_presence", { status: "offline" }, "invalid_input");
    await fails(alice.client, "warp_registry_update_presence", { currentTaskCount: -1 }, "invalid_input");

    expect(await ok(alice.client, "warp_registry_deregister")).toMatchObject({
      agentId: alice.warp.agentId,
      deregistered: true,
    });
    await fails(bob.client, "warp_registry_get_info", { agentId: alice.warp.agentId }, "not_found");
    await fails(alice.client, "warp_registry_deregister", {}, "not_registered");
  });

  it("direct messages: sent once, read once, filters never consume what they skip", async () => {
    const { alice, bob } = await pair();
    await fails(
      alice.client,
      "warp_messages_send_direct",
      { agentId: bob.warp.agentId, message: "hi" },
      "not_found",
    );
    await ok(bob.client, "warp_registry_register", { agentType: "claude-code" });
    await ok(alice.client, "warp_messages_send_direct", {
      agentId: bob.warp.agentId,
      message: "please review #12",
      messageType: "review-request",
      metadata: { pr: 12 },
    });
    await ok(alice.client, "warp_messages_send_direct", { agentId: bob.warp.agentId, message: "lunch?" });

    const reviews = await ok(bob.client, "warp_messages_read_direct", { messageType: "review-request" });
    expect(reviews).toMatchObject({ count: 1, remaining: 1 });
    expect(reviews.messages).toEqual([
      expect.objectContaining({
        message: "please review #12",
        from: alice.warp.agentId,
        metadata: { pr: 12 },
      }),
    ]);
    expect((await ok(bob.client, "warp_messages_read_direct", { messageType: "review-request" })).count).toBe(
      0,
    );
    const rest = await ok(bob.client, "warp_messages_read_direct", { fromAgentId: alice.warp.agentId });
    expect((rest.messages as Array<{ message: string }>).map((m) => m.message)).toEqual(["lunch?"]);
    expect((await ok(bob.client, "warp_messages_read_direct")).count).toBe(0);

    await fails(alice.client, "warp_messages_send_direct", { agentId: "bob", message: "x" }, "invalid_input");
    await fails(alice.client, "warp_messages_send_direct", { agentId: bob.warp.agentId }, "invalid_input");
    await fails(
      alice.client,
      "warp_messages_send_direct",
      { agentId: bob.warp.agentId, message: "x", messageType: "Bad Type" },
      "invalid_input",
    );
    await fails(
      alice.client,
      "warp_messages_send_direct",
      { agentId: bob.warp.agentId, message: "x", metadata: { big: "y".repeat(10_000) } },
      "invalid_input",
    );
    await fails(bob.client, "warp_messages_read_direct", { limit: 1000 }, "invalid_input");
    await fails(bob.client, "warp_messages_read_direct", { fromAgentId: 5 }, "invalid_input");
  });
});

describe("warp MCP server, bad input", () => {
  it("every messaging tool refuses wrong types, unknown keys, invalid names and out-of-range values", async () => {
    const { alice, bob } = await pair();
    const bobId = bob.warp.agentId;
    await ok(bob.client, "warp_registry_register", { agentType: "claude-code" });
    const cases: Array<[tool: string, args: Record<string, unknown>, code: string]> = [
      ["warp_handle_set", { handle: "x".repeat(65) }, "invalid_input"],
      ["warp_handle_set", { handle: "alice", extra: 1 }, "invalid_input"],
      ["warp_channels_list", { extra: true }, "invalid_input"],
      ["warp_channels_send", { channel: "roadmap", message: "x".repeat(32_769) }, "invalid_input"],
      ["warp_channels_send", { channel: "roadmap", message: "x", to: "bob" }, "invalid_input"],
      ["warp_channels_send", { message: "x" }, "invalid_input"],
      ["warp_channels_read", { channel: "roadmap", limit: 201 }, "invalid_input"],
      ["warp_channels_read", { channel: "roadmap", limit: 2.5 }, "invalid_input"],
      ["warp_channels_read", { channel: "roadmap", cursor: 0 }, "invalid_input"],
      ["warp_channels_read", { channel: "roadmap", cursor: -3 }, "invalid_input"],
      ["warp_channels_read", {}, "invalid_input"],
      ["warp_channels_read", { channel: "no-such-channel" }, "not_found"],
      ["warp_channels_status", { channel: "Road Map" }, "invalid_input"],
      ["warp_channels_status", { channel: 5 }, "invalid_input"],
      ["warp_registry_register", { agentType: "x", scope: "everyone" }, "invalid_input"],
      ["warp_registry_register", { agentType: "x", boundaries: ["open source"] }, "invalid_input"],
      ["warp_registry_register", { agentType: "x", capabilities: [1] }, "invalid_input"],
      ["warp_registry_register", { agentType: "x", maxConcurrentTasks: "2" }, "invalid_input"],
      ["warp_registry_register", { agentType: "x", status: "online" }, "invalid_input"],
      ["warp_registry_discover", { limit: 0 }, "invalid_input"],
      ["warp_registry_discover", { limit: 101 }, "invalid_input"],
      ["warp_registry_discover", { includeOffline: "yes" }, "invalid_input"],
      ["warp_registry_discover", { scope: "world" }, "invalid_input"],
      ["warp_registry_discover", { agentType: "Claude Code" }, "invalid_input"],
      ["warp_registry_discover", { boundary: "a>b" }, "invalid_input"],
      ["warp_registry_get_info", {}, "invalid_input"],
      ["warp_registry_get_info", { agentId: 42 }, "invalid_input"],
      ["warp_registry_get_info", { agentId: bobId.toUpperCase() }, "invalid_input"],
      ["warp_registry_get_info", { agentId: bobId, projectId: "a.b" }, "invalid_input"],
      ["warp_registry_get_info", { agentId: "f".repeat(32) }, "not_found"],
      ["warp_registry_update_presence", { status: "away" }, "invalid_input"],
      ["warp_registry_update_presence", { capabilities: ["Type Script"] }, "invalid_input"],
      ["warp_registry_update_presence", { currentTaskCount: 1.5 }, "invalid_input"],
      ["warp_registry_deregister", { agentId: bobId }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: "" }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: "x".repeat(32_769) }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: "x", metadata: "pr 12" }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: "x", metadata: [1] }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: "x", projectId: "A B" }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: bobId, message: 5 }, "invalid_input"],
      ["warp_messages_send_direct", { agentId: "f".repeat(32), message: "x" }, "not_found"],
      ["warp_messages_read_direct", { limit: 0 }, "invalid_input"],
      ["warp_messages_read_direct", { messageType: "Review Request" }, "invalid_input"],
      ["warp_messages_read_direct", { fromAgentId: "bob" }, "invalid_input"],
      ["warp_messages_read_direct", { unread: true }, "invalid_input"],
    ];
    for (const [tool, args, code] of cases) await fails(alice.client, tool, args, code);
    // None of them changed anything: bob's inbox is empty and alice is still unregistered.
    expect((await ok(bob.client, "warp_messages_read_direct")).count).toBe(0);
    expect((await ok(alice.client, "warp_handle_get")).registered).toBe(false);
  });
});

describe("warp MCP server across projects", () => {
  it("a public agent found with discover scope public can be inspected and messaged", async () => {
    const a = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, uniqueProjectId(), { env: { LOOMINAL_AGENT_NAME: "bob" } });
    const alice = await agent(a.config);
    const bob = await agent(b.config);
    await ok(alice.client, "warp_registry_register", { agentType: "claude-code", scope: "public" });
    const found = await ok(bob.client, "warp_registry_discover", { scope: "public" });
    const target = (found.agents as Array<{ agentId: string; projectId: string }>).find(
      (x) => x.agentId === alice.warp.agentId,
    );
    expect(target?.projectId).toBe(alice.warp.projectId);

    const info = await ok(bob.client, "warp_registry_get_info", { agentId: alice.warp.agentId });
    expect(info.agent).toMatchObject({ agentId: alice.warp.agentId, projectId: alice.warp.projectId });
    const sent = await ok(bob.client, "warp_messages_send_direct", {
      agentId: alice.warp.agentId,
      message: "can you review our parser?",
      messageType: "review-request",
    });
    expect(sent).toMatchObject({ to: alice.warp.agentId, projectId: alice.warp.projectId });
    const inbox = await ok(alice.client, "warp_messages_read_direct");
    expect(inbox.messages).toEqual([
      expect.objectContaining({ from: bob.warp.agentId, message: "can you review our parser?" }),
    ]);

    // Asked in the wrong project, or once alice is team-only again: not found.
    await fails(
      bob.client,
      "warp_registry_get_info",
      { agentId: alice.warp.agentId, projectId: bob.warp.projectId },
      "not_found",
    );
    await ok(alice.client, "warp_registry_register", { agentType: "claude-code" });
    await fails(bob.client, "warp_registry_get_info", { agentId: alice.warp.agentId }, "not_found");
    await fails(
      bob.client,
      "warp_messages_send_direct",
      { agentId: alice.warp.agentId, message: "still there?" },
      "not_found",
    );
  });
});

describe("warp MCP server without NATS", () => {
  it("starts, lists its tools and answers calls with a clear error until NATS is reachable", async () => {
    const port = await freePort();
    const config = projectConfig(`nats://127.0.0.1:${port}`, uniqueProjectId()).config;
    const fabric = Fabric.start({ nats: config.nats, reconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    const warp = await Warp.open({ config, fabric, lockDir: locks.path });
    const client = await connectInMemory(createWarpServer(warp));
    let late: NatsServer | undefined;
    try {
      expect((await client.listTools()).map((t) => t.name)).toEqual(expect.arrayContaining(MESSAGING_TOOLS));
      const msg = await fails(
        client,
        "warp_channels_send",
        { channel: "roadmap", message: "x" },
        "nats_unavailable",
      );
      expect(msg).toContain(`127.0.0.1:${port}`);
      // Who am I needs no NATS: answered from this process even now.
      const me = await client.call("warp_handle_get");
      expect(me.isError).toBe(false);
      expect(me.structured?.agentId).toBe(warp.agentId);

      late = await NatsServer.start({ port });
      await eventually(
        async () => {
          const r = await client.call("warp_channels_send", { channel: "roadmap", message: "now it works" });
          if (r.isError) throw new Error(r.text);
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
    } finally {
      await client.close();
      await warp.close();
      await fabric.close();
      await late?.stop();
    }
  });
});
