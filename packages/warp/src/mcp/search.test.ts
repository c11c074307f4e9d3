import { type McpSdk, uniqueProjectId } from "@loominal/testkit";
import { describe, expect, it } from "vitest";
import { mcpAgents, ok } from "./mcp-agents.test-helper.js";

const agent = mcpAgents();

type Hit = { source: string; channel?: string; fromHandle: string; excerpt: string };

describe("warp_messages_search", () => {
  for (const sdk of ["v2", "v1"] as McpSdk[]) {
    it(`finds what the agent may read, and only that, within its scan bound (${sdk} client)`, async () => {
      const p = uniqueProjectId();
      const alice = await agent(p, "alice", undefined, sdk);
      const bob = await agent(p, "bob", alice.dir, sdk);
      const carol = await agent(p, "carol", alice.dir, sdk);

      await ok(bob.client, "warp_messages_send_direct", {
        agentId: alice.warp.agentId,
        message: "Please deploy the Parser on Friday after the freeze",
      });
      await ok(bob.client, "warp_messages_send_direct", {
        agentId: carol.warp.agentId,
        message: "carol: the parser friday plan is yours",
      });
      await ok(carol.client, "warp_channels_send", {
        channel: "roadmap",
        message: "Parser freeze starts Friday",
      });
      await ok(carol.client, "warp_channels_send", {
        channel: "roadmap",
        message: "my private parser friday notes",
        scope: "private",
      });
      await ok(carol.client, "warp_channels_send", { channel: "errors", message: "parser crashed on input" });

      const found = await ok(alice.client, "warp_messages_search", { query: "parser friday" });
      const hits = found.hits as Hit[];
      // Her own inbox and the team channel message; not carol's private note, not carol's inbox.
      expect(hits.map((h) => [h.source, h.channel ?? null, h.fromHandle]).sort()).toEqual([
        ["channel", "roadmap", "carol"],
        ["inbox", null, "bob"],
      ]);
      expect(hits.find((h) => h.source === "inbox")?.excerpt).toContain("deploy the Parser on Friday");
      expect(found).toMatchObject({ count: 2, moreMatches: 0, maxScan: 2_000, truncated: false });
      expect(found.scanned).toBe(4);

      const phrase = await ok(alice.client, "warp_messages_search", {
        query: '"freeze starts"',
        inbox: false,
      });
      expect((phrase.hits as Hit[]).map((h) => h.excerpt)).toEqual(["Parser freeze starts Friday"]);
      const oneChannel = await ok(alice.client, "warp_messages_search", {
        query: "parser",
        channels: ["errors"],
        inbox: false,
      });
      expect((oneChannel.hits as Hit[]).map((h) => h.channel)).toEqual(["errors"]);

      // Bounded: with maxScan 2 at most two stored messages are looked at, and it says older were left.
      const bounded = await ok(alice.client, "warp_messages_search", { query: "parser", maxScan: 2 });
      expect(bounded.scanned).toBeLessThanOrEqual(2);
      expect(bounded.truncated).toBe(true);

      // Searching consumed nothing: the direct message is still unread.
      const inbox = await ok(alice.client, "warp_messages_read_direct");
      expect(inbox.count).toBe(1);

      const unknown = await alice.client.call("warp_messages_search", { query: "x", channels: ["nope"] });
      expect(unknown.error?.code).toBe("not_found");
      const tooWide = await alice.client.call("warp_messages_search", { query: "x", maxScan: 1_000_000 });
      expect(tooWide.error?.code).toBe("invalid_input");
    });
  }
});
