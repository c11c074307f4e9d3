import { silentLogger } from "@loominal/fabric";
import { streams, subjects } from "@loominal/protocol";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compactLedger, Inbox } from "./inbox.js";
import { openWarp, projectConfig } from "./warp.test-helper.js";

let nats: NatsServer;
const locks = tempDir("warp-locks-");

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
  locks.cleanup();
});

async function pair() {
  const p = uniqueProjectId();
  const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
  const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
  const c = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "carol" }, dir: a.dir });
  const wa = await openWarp(a.config, locks.path);
  const wb = await openWarp(b.config, locks.path);
  const wc = await openWarp(c.config, locks.path);
  await wb.warp.registry.register({ agentType: "claude-code" });
  return {
    alice: wa.warp,
    bob: wb.warp,
    carol: wc.warp,
    close: async () => {
      await wa.close();
      await wb.close();
      await wc.close();
      a.cleanup();
    },
  };
}

describe("direct messages", () => {
  it("an inbox stream deleted under a running server is created again; later messages are read", async () => {
    const { alice, bob, close } = await pair();
    try {
      for (const m of ["one", "two", "three"]) await alice.inbox.send(bob.agentId, m);
      expect((await bob.inbox.read()).messages.map((m) => m.message)).toEqual(["one", "two", "three"]);
      const jsm = await bob.fabric.jsm();
      await jsm.streams.delete(bob.inbox.stream);
      // The new stream numbers from 1 again, below the reader's floor: the reader must notice.
      await alice.inbox.send(bob.agentId, "after the delete");
      const after = await bob.inbox.read();
      expect(after.messages.map((m) => m.message)).toEqual(["after the delete"]);
      expect((await bob.inbox.read()).messages).toEqual([]);
      // And a read that is first to find the stream gone creates it too.
      await jsm.streams.delete(bob.inbox.stream);
      expect((await bob.inbox.read()).messages).toEqual([]);
      await alice.inbox.send(bob.agentId, "later");
      expect((await bob.inbox.read()).messages.map((m) => m.message)).toEqual(["later"]);
    } finally {
      await close();
    }
  });

  it("each message is returned exactly once, across reads with different filters", async () => {
    const { alice, bob, carol, close } = await pair();
    try {
      await alice.inbox.send(bob.agentId, "a1", { messageType: "question" });
      await carol.inbox.send(bob.agentId, "c1", { messageType: "status" });
      await alice.inbox.send(bob.agentId, "a2", { messageType: "status", metadata: { pr: 42 } });
      await carol.inbox.send(bob.agentId, "c2", { messageType: "question" });

      const statusOnly = await bob.inbox.read({ messageType: "status" });
      expect(statusOnly.messages.map((m) => m.message)).toEqual(["c1", "a2"]);
      expect(statusOnly.messages[1]?.metadata).toEqual({ pr: 42 });
      expect(statusOnly.remaining).toBe(2);

      const fromCarol = await bob.inbox.read({ fromAgentId: carol.agentId });
      expect(fromCarol.messages.map((m) => m.message)).toEqual(["c2"]);
      expect(fromCarol.messages[0]?.fromHandle).toBe("carol");

      const statusAgain = await bob.inbox.read({ messageType: "status" });
      expect(statusAgain.messages).toEqual([]);

      const rest = await bob.inbox.read({});
      expect(rest.messages.map((m) => m.message)).toEqual(["a1"]);
      expect(rest.remaining).toBe(0);
      expect((await bob.inbox.read({})).messages).toEqual([]);
    } finally {
      await close();
    }
  });

  it("a limit leaves the rest waiting, in order", async () => {
    const { alice, bob, close } = await pair();
    try {
      for (let i = 0; i < 7; i++) await alice.inbox.send(bob.agentId, `m${i}`);
      const first = await bob.inbox.read({ limit: 3 });
      expect(first.messages.map((m) => m.message)).toEqual(["m0", "m1", "m2"]);
      expect(first.remaining).toBe(4);
      const second = await bob.inbox.read({ limit: 3 });
      expect(second.messages.map((m) => m.message)).toEqual(["m3", "m4", "m5"]);
      const third = await bob.inbox.read({ limit: 3 });
      expect(third.messages.map((m) => m.message)).toEqual(["m6"]);
    } finally {
      await close();
    }
  });

  it("concurrent reads never return the same message twice", async () => {
    const { alice, bob, close } = await pair();
    try {
      const sent = 60;
      await Promise.all(Array.from({ length: sent }, (_, i) => alice.inbox.send(bob.agentId, `m${i}`)));
      const reads = await Promise.all(Array.from({ length: 6 }, () => bob.inbox.read({ limit: 7 })));
      const seen = reads.flatMap((r) => r.messages.map((m) => m.message));
      const rest = await bob.inbox.read({ limit: 100 });
      const all = [...seen, ...rest.messages.map((m) => m.message)];
      expect(all.length).toBe(sent);
      expect(new Set(all).size).toBe(sent);
    } finally {
      await close();
    }
  });

  it("messages survive the reader restarting, and are still returned once", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    let wb = await openWarp(b.config, locks.path);
    try {
      await wb.warp.registry.register({ agentType: "claude-code" });
      await wa.warp.inbox.send(wb.warp.agentId, "before");
      await wa.warp.inbox.send(wb.warp.agentId, "kept");
      expect((await wb.warp.inbox.read({ limit: 1 })).messages.map((m) => m.message)).toEqual(["before"]);
      await wb.close();
      wb = await openWarp(b.config, locks.path);
      expect(wb.warp.agentId).toBe(b.config.agentId);
      expect((await wb.warp.inbox.read({})).messages.map((m) => m.message)).toEqual(["kept"]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("two readers of one inbox racing on the ledger never return the same message twice", async () => {
    const { alice, bob, close } = await pair();
    try {
      const sent = 40;
      await Promise.all(Array.from({ length: sent }, (_, i) => alice.inbox.send(bob.agentId, `m${i}`)));
      // A second Inbox over the same identity: no in-process queue between them, only the ledger's CAS.
      const twin = new Inbox({
        fabric: bob.fabric,
        identity: bob.identity,
        registry: bob.registry,
        settings: bob.config.file.warp.inbox,
        logger: silentLogger(),
        acks: bob.acks,
      });
      const reads = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? bob : { inbox: twin }).inbox.read({ limit: 4 })),
      );
      const seen = reads.flatMap((r) => r.messages.map((m) => m.message));
      const rest = [
        ...(await twin.read({ limit: 100 })).messages,
        ...(await bob.inbox.read({ limit: 100 })).messages,
      ];
      const all = [...seen, ...rest.map((m) => m.message)];
      expect(all.length).toBe(sent);
      expect(new Set(all).size).toBe(sent);
    } finally {
      await close();
    }
  });

  it("a read says how many messages it had seen waiting were dropped by retention, and when the inbox is full", async () => {
    const p = uniqueProjectId();
    const file = { warp: { inbox: { maxMessagesPerAgent: 3 } } };
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" }, file });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wb.warp.registry.register({ agentType: "claude-code" });
      for (const m of ["m1", "m2", "m3"]) await wa.warp.inbox.send(wb.warp.agentId, m);
      const first = await wb.warp.inbox.read({ limit: 1 });
      expect(first).toMatchObject({ remaining: 2, dropped: 0, full: true });
      expect(first.messages.map((m) => m.message)).toEqual(["m1"]);
      // Three more push m2 and m3 (seen waiting, never read) out of bob's subject.
      for (const m of ["m4", "m5", "m6"]) await wa.warp.inbox.send(wb.warp.agentId, m);
      const second = await wb.warp.inbox.read({ limit: 1 });
      expect(second.messages.map((m) => m.message)).toEqual(["m4"]);
      expect(second).toMatchObject({ remaining: 2, dropped: 2, full: true });
      // Reported once.
      const third = await wb.warp.inbox.read();
      expect(third.messages.map((m) => m.message)).toEqual(["m5", "m6"]);
      expect(third).toMatchObject({ remaining: 0, dropped: 0 });
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("the ledger floor moves past read messages and stays below the first unread one", () => {
    expect(compactLedger(0, new Set([3, 5]), [3, 5, 9])).toEqual({ floor: 8, consumed: [] });
    expect(compactLedger(0, new Set([3, 9]), [3, 5, 9])).toEqual({ floor: 4, consumed: [9] });
    expect(compactLedger(4, new Set([9, 12]), [5, 9])).toEqual({ floor: 4, consumed: [9, 12] });
    expect(compactLedger(4, new Set([5, 9, 12]), [5, 9])).toEqual({ floor: 9, consumed: [12] });
    expect(compactLedger(7, new Set(), [])).toEqual({ floor: 7, consumed: [] });
  });

  it("the ledger floor does not move when a pulled message's sequence could not be read", () => {
    // Without the unparsed message the floor would move to 9; with it, it may lie anywhere above 0.
    expect(compactLedger(0, new Set([3, 5, 9]), [3, 5, 9], 1)).toEqual({ floor: 0, consumed: [3, 5, 9] });
  });

  it("sending to an agent that is not registered is refused", async () => {
    const { alice, carol, close } = await pair();
    try {
      await expect(alice.inbox.send(carol.agentId, "hi")).rejects.toMatchObject({ code: "not_found" });
      await expect(alice.inbox.send("not-an-id", "hi")).rejects.toMatchObject({ code: "invalid_name" });
    } finally {
      await close();
    }
  });

  it("a direct message reaches a public agent of another project, in that project's inbox", async () => {
    const pa = uniqueProjectId();
    const pb = uniqueProjectId();
    const a = projectConfig(nats.url, pa, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, pb, { env: { LOOMINAL_AGENT_NAME: "bob" } });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.registry.register({ agentType: "claude-code", scope: "public" });
      // alice has never touched her inbox: the first message creates her project's inbox stream.
      const sent = await wb.warp.inbox.send(wa.warp.agentId, "hello from next door", {
        messageType: "question",
      });
      expect(sent).toMatchObject({ to: wa.warp.agentId, projectId: pa });
      const jsm = await wb.fabric.jsm();
      const stored = await jsm.streams.getMessage(streams.inbox(pa), { seq: sent.seq });
      expect(stored?.subject).toBe(subjects.inbox(pa, wa.warp.agentId));
      await expect(jsm.streams.info(streams.inbox(pb))).rejects.toThrow();

      const read = await wa.warp.inbox.read({});
      expect(read.messages).toEqual([
        expect.objectContaining({
          from: wb.warp.agentId,
          fromHandle: "bob",
          message: "hello from next door",
        }),
      ]);
      // bob is not visible to alice (not registered), so she cannot answer until he is public.
      await expect(wa.warp.inbox.send(wb.warp.agentId, "hi")).rejects.toMatchObject({ code: "not_found" });
      await wb.warp.registry.register({ agentType: "claude-code", scope: "public" });
      expect(await wa.warp.inbox.send(wb.warp.agentId, "hi")).toMatchObject({ projectId: pb });
      expect((await wb.warp.inbox.read({})).messages.map((m) => m.message)).toEqual(["hi"]);

      // A team-scoped agent of another project is out of reach.
      await wa.warp.registry.register({ agentType: "claude-code", scope: "team" });
      await expect(wb.warp.inbox.send(wa.warp.agentId, "still there?")).rejects.toMatchObject({
        code: "not_found",
      });
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
      b.cleanup();
    }
  });
});
