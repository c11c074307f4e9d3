import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  eventually,
  NatsServer,
  runToExit,
  spawnStdio,
  type TestClient,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

let nats: NatsServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  if (!existsSync(BIN))
    throw new Error(`${BIN} is missing: build first (pnpm --filter @loominal/warp exec tsc -b)`);
  nats = await NatsServer.start();
});
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await nats.stop();
});

/** Starts `loominal-warp` the way Claude Code does: a child process speaking MCP on stdio. */
async function startWarp(cwd: string, projectId: string): Promise<TestClient> {
  const client = await spawnStdio({
    command: process.execPath,
    args: [BIN],
    cwd,
    // Every tool listed: this test calls identity and registry tools the core profile keeps behind warp_more.
    env: {
      NATS_URL: nats.url,
      LOOMINAL_PROJECT_ID: projectId,
      LOOMINAL_LOG_LEVEL: "warn",
      LOOMINAL_TOOLS: "full",
    },
  });
  clients.push(client);
  return client;
}

async function call(client: TestClient, name: string, args: Record<string, unknown> = {}) {
  const r = await client.call(name, args);
  if (r.isError) throw new Error(`${name}: ${r.text}`);
  return r.structured ?? {};
}

describe("loominal-warp over stdio", () => {
  it("two processes in one directory hold distinct identities and hold a conversation", async () => {
    const dir = tempDir("warp-bin-");
    const projectId = uniqueProjectId();
    writeFileSync(join(dir.path, ".loominal.json"), JSON.stringify({ warp: { heartbeatIntervalMs: 300 } }));
    try {
      const alice = await startWarp(dir.path, projectId);
      const bob = await startWarp(dir.path, projectId);
      const tools = await alice.listTools();
      expect(tools.map((t) => t.name)).toContain("warp_messages_read_direct");

      const a = await eventually(() => call(alice, "warp_handle_get"), { timeoutMs: 10_000 });
      const b = await eventually(() => call(bob, "warp_handle_get"), { timeoutMs: 10_000 });
      expect(a.agentId).not.toBe(b.agentId);
      expect([a.instance, b.instance].sort()).toEqual([1, 2]);

      await call(alice, "warp_handle_set", { handle: "alice" });
      await call(bob, "warp_handle_set", { handle: "bob" });
      await call(alice, "warp_registry_register", { agentType: "claude-code", capabilities: ["typescript"] });
      await call(bob, "warp_registry_register", { agentType: "claude-code", capabilities: ["review"] });

      const found = await call(alice, "warp_registry_discover", { capability: "review" });
      const reviewer = (found.agents as Array<{ agentId: string; handle: string; pid: number }>)[0];
      expect(reviewer?.handle).toBe("bob");

      // Bad input comes back over stdio as a tool error with its code, not as a protocol failure.
      const unknown = await alice.call("warp_channels_send", { channel: "nope", message: "x" });
      expect(unknown.isError).toBe(true);
      expect(unknown.text).toMatch(/^not_found: channel "nope" is not configured/);
      const wrongType = await alice.call("warp_channels_read", { channel: "roadmap", limit: "all" });
      expect(wrongType.isError).toBe(true);
      expect(wrongType.text).toMatch(/^invalid_input:.*limit/);

      await call(alice, "warp_channels_send", { channel: "roadmap", message: "shipping the parser today" });
      const read = await call(bob, "warp_channels_read", { channel: "roadmap" });
      expect(read.messages).toEqual([
        expect.objectContaining({ senderHandle: "alice", message: "shipping the parser today" }),
      ]);

      await call(alice, "warp_messages_send_direct", {
        agentId: reviewer?.agentId,
        message: "review #7 please",
      });
      const inbox = await call(bob, "warp_messages_read_direct");
      expect(inbox.messages).toEqual([
        expect.objectContaining({ fromHandle: "alice", message: "review #7 please" }),
      ]);
      expect((await call(bob, "warp_messages_read_direct")).count).toBe(0);

      // bob's process dies without a goodbye: alice sees it offline within 3 heartbeat intervals.
      process.kill(reviewer?.pid ?? 0, "SIGKILL");
      await eventually(
        async () => {
          const info = await call(alice, "warp_registry_get_info", { agentId: reviewer?.agentId });
          if ((info.agent as { status: string }).status !== "offline") throw new Error("still online");
        },
        { timeoutMs: 10_000 },
      );

      // A restarted process gets the dead one's identity (and its inbox) back.
      await call(alice, "warp_messages_send_direct", {
        agentId: reviewer?.agentId,
        message: "while you were away",
      });
      const bobAgain = await startWarp(dir.path, projectId);
      const again = await eventually(() => call(bobAgain, "warp_handle_get"), { timeoutMs: 10_000 });
      expect(again.agentId).toBe(reviewer?.agentId);
      expect(again.handle).toBe("bob");
      const waiting = await call(bobAgain, "warp_messages_read_direct");
      expect(waiting.messages).toEqual([expect.objectContaining({ message: "while you were away" })]);
    } finally {
      dir.cleanup();
    }
  });
});

describe("loominal-warp start-up failure", () => {
  it("exits 2 with the reason on stderr when the configuration is bad", async () => {
    const dir = tempDir("warp-badenv-");
    try {
      const { code, stderr } = await runToExit(process.execPath, [BIN], {
        cwd: dir.path,
        env: { PATH: process.env.PATH ?? "", LOOMINAL_PROJECT_ID: "Not A Project" },
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/loominal-warp: .*LOOMINAL_PROJECT_ID/);
    } finally {
      dir.cleanup();
    }
  });
});
