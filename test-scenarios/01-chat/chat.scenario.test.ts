import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { eventually, spawnStdio, type TestClient, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NATS_MODES, ScenarioNats } from "../lib/nats.js";

const here = dirname(fileURLToPath(import.meta.url));
const WARP_BIN = join(here, "..", "..", "packages", "warp", "dist", "bin.js");

describe.each(NATS_MODES)("01-chat (%s NATS): two agents talk on a channel and by direct message", (mode) => {
  let nats: ScenarioNats;
  const clients: TestClient[] = [];
  const project = tempDir("chat-scenario-");
  const projectId = uniqueProjectId("chat");
  // One generated user per agent (credentialed mode), both of the project.
  const users = [
    { name: "planner", projectId, userId: "0a".repeat(16) },
    { name: "coder", projectId, userId: "0c".repeat(16) },
  ];

  beforeAll(async () => {
    if (!existsSync(WARP_BIN))
      throw new Error(`${WARP_BIN} is missing: run pnpm --filter @loominal/warp exec tsc -b`);
    writeFileSync(
      join(project.path, ".loominal.json"),
      JSON.stringify({ projectId, warp: { heartbeatIntervalMs: 500 } }),
    );
    nats = await ScenarioNats.start(mode, users, { [projectId]: project.path });
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nats?.stop();
    project.cleanup();
  });

  /** One agent = one `loominal-warp` process, started by its MCP client as Claude Code would start it. */
  async function startAgent(name: string): Promise<TestClient> {
    const client = await spawnStdio({
      command: process.execPath,
      args: [WARP_BIN],
      cwd: project.path,
      env: { ...nats.env(name), LOOMINAL_AGENT_NAME: name, LOOMINAL_LOG_LEVEL: "warn" },
    });
    clients.push(client);
    return client;
  }

  async function call(client: TestClient, tool: string, args: Record<string, unknown> = {}) {
    const r = await client.call(tool, args);
    if (r.isError) throw new Error(`${tool}: ${r.text}`);
    return r.structured ?? {};
  }

  /** Retries a call while NATS is coming back. */
  function soon(client: TestClient, tool: string, args: Record<string, unknown> = {}) {
    return eventually(() => call(client, tool, args), { timeoutMs: 20_000, intervalMs: 200 });
  }

  type ChannelMessage = { senderHandle: string; message: string };
  type DirectMessage = { fromHandle: string; message: string; messageType: string };

  it("planner and coder coordinate, and the conversation survives a NATS restart", async () => {
    const planner = await startAgent("planner");
    const coder = await startAgent("coder");

    const p = await soon(planner, "warp_registry_register", {
      agentType: "claude-code",
      capabilities: ["planning"],
    });
    const c = await soon(coder, "warp_registry_register", {
      agentType: "claude-code",
      capabilities: ["typescript"],
    });
    const plannerId = (p.agent as { agentId: string }).agentId;
    const coderId = (c.agent as { agentId: string }).agentId;
    expect(plannerId).not.toBe(coderId);

    // The planner finds someone who writes TypeScript.
    const found = await call(planner, "warp_registry_discover", { capability: "typescript" });
    expect((found.agents as Array<{ agentId: string }>).map((a) => a.agentId)).toEqual([coderId]);

    // Channel conversation.
    await call(planner, "warp_channels_send", { channel: "roadmap", message: "M1: parser, then the CLI" });
    const first = await call(coder, "warp_channels_read", { channel: "roadmap" });
    expect((first.messages as ChannelMessage[]).map((m) => [m.senderHandle, m.message])).toEqual([
      ["planner", "M1: parser, then the CLI"],
    ]);
    await call(coder, "warp_channels_send", {
      channel: "parallel-work",
      message: "coder: taking the parser",
    });
    const pw = await call(planner, "warp_channels_read", { channel: "parallel-work" });
    expect((pw.messages as ChannelMessage[]).map((m) => m.message)).toEqual(["coder: taking the parser"]);

    // Direct messages, with a filtered read that leaves the rest.
    await call(planner, "warp_messages_send_direct", {
      agentId: coderId,
      message: "parser spec is in docs/parser.md",
      messageType: "task",
      metadata: { priority: 1 },
    });
    await call(planner, "warp_messages_send_direct", {
      agentId: coderId,
      message: "thanks for picking it up",
    });
    const tasks = await call(coder, "warp_messages_read_direct", { messageType: "task" });
    expect((tasks.messages as DirectMessage[]).map((m) => m.message)).toEqual([
      "parser spec is in docs/parser.md",
    ]);
    expect(tasks.remaining).toBe(1);
    await call(coder, "warp_messages_send_direct", {
      agentId: plannerId,
      message: "parser done",
      messageType: "status",
    });

    // NATS goes away and comes back (same store): nothing is lost, both agents carry on.
    await nats.restart();
    const status = await soon(planner, "warp_messages_read_direct", { fromAgentId: coderId });
    expect((status.messages as DirectMessage[]).map((m) => [m.fromHandle, m.messageType, m.message])).toEqual(
      [["coder", "status", "parser done"]],
    );
    const rest = await soon(coder, "warp_messages_read_direct");
    expect((rest.messages as DirectMessage[]).map((m) => m.message)).toEqual(["thanks for picking it up"]);
    expect((await call(coder, "warp_messages_read_direct")).count).toBe(0);

    await soon(planner, "warp_channels_send", { channel: "roadmap", message: "M1 done; M2: the CLI" });
    const after = await soon(coder, "warp_channels_read", { channel: "roadmap", cursor: first.nextCursor });
    expect((after.messages as ChannelMessage[]).map((m) => m.message)).toEqual(["M1 done; M2: the CLI"]);

    // Both still online (heartbeats resumed after the restart).
    const online = await soon(planner, "warp_registry_discover", { status: "online" });
    expect((online.agents as Array<{ agentId: string }>).map((a) => a.agentId).sort()).toEqual(
      [plannerId, coderId].sort(),
    );
  });
});
