import { type McpSdk, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { mcpAgents, ok } from "./mcp-agents.test-helper.js";

const agent = mcpAgents();

type Msg = { messageId: string; threadId: string; replyTo?: string; message: string; ackRequired?: boolean };

describe("threads and acknowledgements", () => {
  for (const sdk of ["v2", "v1"] as McpSdk[]) {
    it(`direct messages keep threads, and an ackRequired message is unacknowledged until acked (${sdk} client)`, async () => {
      const p = uniqueProjectId();
      const alice = await agent(p, "alice", undefined, sdk);
      const bob = await agent(p, "bob", alice.dir, sdk);

      const first = await ok(alice.client, "warp_messages_send_direct", {
        agentId: bob.warp.agentId,
        message: "Please review the parser change before noon",
        ackRequired: true,
      });
      expect(first).toMatchObject({ ackRequired: true });
      const m1 = first.messageId as string;
      expect(first.threadId).toBe(m1);
      await ok(alice.client, "warp_messages_send_direct", {
        agentId: bob.warp.agentId,
        message: "unrelated",
      });

      const waiting = await ok(alice.client, "warp_messages_ack_status");
      expect(waiting.unacknowledged).toBe(1);
      expect(waiting.messages).toEqual([
        expect.objectContaining({
          messageId: m1,
          to: bob.warp.agentId,
          acknowledged: false,
          toHandle: "bob",
        }),
      ]);

      // Bob reads only that thread: the unrelated message stays unread.
      const thread = await ok(bob.client, "warp_messages_read_direct", { threadId: m1 });
      expect(thread.messages).toEqual([
        expect.objectContaining({
          messageId: m1,
          threadId: m1,
          ackRequired: true,
          message: expect.any(String),
        }),
      ]);
      expect(thread.remaining).toBe(1);

      const reply = await ok(bob.client, "warp_messages_send_direct", {
        agentId: alice.warp.agentId,
        message: "Looks good, one nit",
        replyTo: m1,
      });
      expect(reply.threadId).toBe(m1);
      await ok(bob.client, "warp_messages_send_direct", { agentId: alice.warp.agentId, message: "lunch?" });
      const answers = await ok(alice.client, "warp_messages_read_direct", { threadId: m1 });
      expect((answers.messages as Msg[]).map((m) => [m.message, m.replyTo])).toEqual([
        ["Looks good, one nit", m1],
      ]);
      expect(answers.remaining).toBe(1);

      // Only the recipient acknowledges.
      const notMine = await alice.client.call("warp_messages_ack", { messageId: m1 });
      expect(notMine.error?.code).toBe("not_found");
      const acked = await ok(bob.client, "warp_messages_ack", { messageId: m1 });
      expect(acked.message).toMatchObject({ messageId: m1, acknowledged: true });
      const again = await ok(bob.client, "warp_messages_ack", { messageId: m1 });
      expect((again.message as { ackedAt: string }).ackedAt).toBe(
        (acked.message as { ackedAt: string }).ackedAt,
      );

      const after = await ok(alice.client, "warp_messages_ack_status");
      expect(after).toMatchObject({ unacknowledged: 0, count: 0 });
      const all = await ok(alice.client, "warp_messages_ack_status", { pendingOnly: false });
      expect(all.messages).toEqual([expect.objectContaining({ messageId: m1, acknowledged: true })]);
      const one = await ok(alice.client, "warp_messages_ack_status", { messageId: m1 });
      expect(one).toMatchObject({ count: 1, unacknowledged: 0 });

      const bad = await bob.client.call("warp_messages_read_direct", { threadId: "Not A Thread" });
      expect(bad.error?.code).toBe("invalid_input");
    });

    it(`channel messages carry threads and one thread can be read (${sdk} client)`, async () => {
      const p = uniqueProjectId();
      const alice = await agent(p, "alice", undefined, sdk);
      const bob = await agent(p, "bob", alice.dir, sdk);
      const root = await ok(alice.client, "warp_channels_send", {
        channel: "roadmap",
        message: "Parser rewrite: who takes the lexer?",
        threadId: "parser-rewrite",
      });
      expect(root.threadId).toBe("parser-rewrite");
      await ok(bob.client, "warp_channels_send", { channel: "roadmap", message: "Release notes drafted" });
      await ok(bob.client, "warp_channels_send", {
        channel: "roadmap",
        message: "I take the lexer",
        threadId: "parser-rewrite",
        replyTo: root.messageId,
      });
      await ok(alice.client, "warp_channels_send", {
        channel: "roadmap",
        message: "private note",
        threadId: "parser-rewrite",
        scope: "private",
      });

      const seenByBob = await ok(bob.client, "warp_channels_read", {
        channel: "roadmap",
        threadId: "parser-rewrite",
      });
      // Scope is enforced as in a plain read: alice's private note is not in bob's view of the thread.
      expect((seenByBob.messages as Msg[]).map((m) => m.message)).toEqual([
        "Parser rewrite: who takes the lexer?",
        "I take the lexer",
      ]);
      expect(seenByBob.scanned).toBe(4);
      const seenByAlice = await ok(alice.client, "warp_channels_read", {
        channel: "roadmap",
        threadId: "parser-rewrite",
        limit: 2,
      });
      expect((seenByAlice.messages as Msg[]).map((m) => m.message)).toEqual([
        "I take the lexer",
        "private note",
      ]);

      const plain = await ok(bob.client, "warp_channels_read", { channel: "roadmap" });
      const release = (plain.messages as Msg[]).find((m) => m.message === "Release notes drafted");
      expect(release?.threadId).toBe(release?.messageId);
      const both = await bob.client.call("warp_channels_read", {
        channel: "roadmap",
        threadId: "parser-rewrite",
        cursor: 1,
      });
      expect(both.error?.code).toBe("invalid_input");
    });
  }
});
