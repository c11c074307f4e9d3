import { streams } from "@loominal/protocol";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { AckPolicy } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

/** Watches the JetStream API requests made on one stream, as "CONSUMER.CREATE", "STREAM.INFO", … */
async function spyOnJetStream(stream: string) {
  const spy = await connect({ servers: nats.url });
  const requests: string[] = [];
  spy.subscribe("$JS.API.>", {
    callback: (_err, m) => {
      // "$JS.API.CONSUMER.CREATE.<stream>.<consumer>" → "CONSUMER.CREATE"
      if (m.subject.includes(`.${stream}`))
        requests.push(m.subject.slice("$JS.API.".length).split(`.${stream}`)[0] ?? m.subject);
    },
  });
  return {
    /**
     * The requests one read made (minus fire-and-forget consumer deletes), sorted. A purge the test itself
     * made just before is left out too: the server may copy a request to the spy after it answered it.
     */
    async requestsOf(reader: NatsConnection, read: () => Promise<unknown>): Promise<string[]> {
      await spy.flush();
      requests.length = 0;
      await read();
      await reader.flush();
      await spy.flush();
      return requests.filter((r) => r !== "CONSUMER.DELETE" && r !== "STREAM.PURGE").sort();
    },
    close: () => spy.close(),
  };
}

describe("channels", () => {
  it("a channel stream deleted under a running server is created again by the next send or read", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      for (let i = 0; i < 5; i++) await wa.warp.channels.send("roadmap", `m${i}`);
      expect((await wb.warp.channels.read("roadmap", { limit: 2 })).messages.map((m) => m.message)).toEqual([
        "m3",
        "m4",
      ]);
      const jsm = await wa.fabric.jsm();
      await jsm.streams.delete(streams.channel(p, "roadmap"));
      await wa.warp.channels.send("roadmap", "after the delete");
      const newest = await wb.warp.channels.read("roadmap", { limit: 2 });
      expect(newest.messages.map((m) => m.message)).toEqual(["after the delete"]);
      await jsm.streams.delete(streams.channel(p, "roadmap"));
      expect((await wb.warp.channels.read("roadmap")).messages).toEqual([]);
      expect((await wb.warp.channels.read("roadmap", { cursor: 1 })).messages).toEqual([]);
      await wa.warp.channels.send("roadmap", "again");
      expect((await wb.warp.channels.read("roadmap")).messages.map((m) => m.message)).toEqual(["again"]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("a sent message is read back by another agent, oldest first, with a cursor that follows the channel", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      for (let i = 0; i < 5; i++) await wa.warp.channels.send("roadmap", `m${i}`);
      const page = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(page.messages.map((m) => m.message)).toEqual(["m2", "m3", "m4"]);
      expect(page.messages[0]?.senderId).toBe(wa.warp.agentId);
      expect(page.hasMore).toBe(false);
      const empty = await wb.warp.channels.read("roadmap", { cursor: page.nextCursor });
      expect(empty.messages).toEqual([]);
      await wa.warp.channels.send("roadmap", "m5");
      await wa.warp.channels.send("roadmap", "m6");
      const next = await wb.warp.channels.read("roadmap", { cursor: empty.nextCursor, limit: 1 });
      expect(next.messages.map((m) => m.message)).toEqual(["m5"]);
      expect(next.hasMore).toBe(true);
      const last = await wb.warp.channels.read("roadmap", { cursor: next.nextCursor });
      expect(last.messages.map((m) => m.message)).toEqual(["m6"]);
      const fromStart = await wb.warp.channels.read("roadmap", { cursor: 1, limit: 2 });
      expect(fromStart.messages.map((m) => m.message)).toEqual(["m0", "m1"]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("a read right after a send sees the message, through a reused read consumer or a remembered page", async () => {
    // The server tells a consumer about a stored message after it acknowledged the publish; a read that
    // trusted a reused consumer's "no messages" answer missed a message its sender had already seen stored.
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.channels.send("roadmap", "start");
      // Many consumers on the stream widen the gap between a publish's ack and a consumer learning of it.
      const jsm = await wa.fabric.jsm();
      for (let i = 0; i < 300; i++)
        await jsm.consumers.add(streams.channel(p, "roadmap"), {
          name: `idle_${i}`,
          ack_policy: AckPolicy.None,
          inactive_threshold: 60_000_000_000,
        });
      let cursor = (await wb.warp.channels.read("roadmap")).nextCursor;
      for (let i = 0; i < 150; i++) {
        await wa.warp.channels.send("roadmap", `c${i}`);
        const page = await wb.warp.channels.read("roadmap", { cursor, limit: 10 });
        expect(page.messages.map((m) => m.message)).toEqual([`c${i}`]);
        cursor = page.nextCursor;
      }
      await wb.warp.channels.read("roadmap", { limit: 5 });
      for (let i = 0; i < 150; i++) {
        await wa.warp.channels.send("roadmap", `n${i}`);
        const page = await wb.warp.channels.read("roadmap", { limit: 5 });
        expect(page.messages.at(-1)?.message).toBe(`n${i}`);
      }
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("private messages are hidden from every reader but their sender", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "alice", LOOMINAL_USER_ID: "a".repeat(32) },
    });
    const b = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "bob", LOOMINAL_USER_ID: "b".repeat(32) },
      dir: a.dir,
    });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.channels.send("errors", "secret", "private");
      await wa.warp.channels.send("errors", "mine only", "personal");
      await wa.warp.channels.send("errors", "hello team", "team");
      const bobs = await wb.warp.channels.read("errors", { cursor: 1 });
      expect(bobs.messages.map((m) => m.message)).toEqual(["hello team"]);
      const alices = await wa.warp.channels.read("errors", { cursor: 1 });
      expect(alices.messages.map((m) => m.message)).toEqual(["secret", "mine only", "hello team"]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("each channel keeps its own retention from .loominal.json", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, {
      file: {
        warp: {
          channels: [
            { name: "tiny", maxMessages: 2 },
            { name: "big", maxMessages: 100 },
          ],
        },
      },
    });
    const wa = await openWarp(a.config, locks.path);
    try {
      for (let i = 0; i < 5; i++) {
        await wa.warp.channels.send("tiny", `t${i}`);
        await wa.warp.channels.send("big", `b${i}`);
      }
      const [tiny] = await wa.warp.channels.status("tiny");
      const [big] = await wa.warp.channels.status("big");
      expect(tiny?.messages).toBe(2);
      expect(big?.messages).toBe(5);
      const page = await wa.warp.channels.read("tiny", { cursor: 1 });
      expect(page.messages.map((m) => m.message)).toEqual(["t3", "t4"]);
      expect(() => wa.warp.channels.info("roadmap")).toThrow(/not configured/);
      expect(() => wa.warp.channels.info("Bad.Name")).toThrow(/contains/);
    } finally {
      await wa.close();
      a.cleanup();
    }
  });

  it("the newest page looks past a window of messages hidden by scope to older visible ones", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "alice", LOOMINAL_USER_ID: "a".repeat(32) },
    });
    const b = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "bob", LOOMINAL_USER_ID: "b".repeat(32) },
      dir: a.dir,
    });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      for (let i = 0; i < 5; i++) await wa.warp.channels.send("roadmap", `team${i}`);
      // 30 private messages: several windows of a 3-message page that bob may not see.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => wa.warp.channels.send("roadmap", `secret${i}`, "private")),
      );
      const page = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(page.messages.map((m) => m.message)).toEqual(["team2", "team3", "team4"]);
      expect(page.nextCursor).toBe(36);
      expect(page.hasMore).toBe(false);
      // Everything visible, but fewer than the limit: the read stops at the stream's first message.
      const all = await wb.warp.channels.read("roadmap", { limit: 50 });
      expect(all.messages.map((m) => m.message)).toEqual(["team0", "team1", "team2", "team3", "team4"]);
      // The sender still sees her own newest messages.
      const alices = await wa.warp.channels.read("roadmap", { limit: 2 });
      expect(alices.messages.map((m) => m.message)).toHaveLength(2);
      expect(alices.messages.every((m) => m.scope === "private")).toBe(true);
      // The cursor of the newest page follows the channel.
      await wa.warp.channels.send("roadmap", "after");
      const next = await wb.warp.channels.read("roadmap", { cursor: page.nextCursor });
      expect(next.messages.map((m) => m.message)).toEqual(["after"]);
      expect(next.nextCursor).toBe(37);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("the newest page stops after a bounded number of windows and still returns a correct cursor", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "alice", LOOMINAL_USER_ID: "a".repeat(32) },
    });
    const b = projectConfig(nats.url, p, {
      env: { LOOMINAL_AGENT_NAME: "bob", LOOMINAL_USER_ID: "b".repeat(32) },
      dir: a.dir,
    });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    try {
      await wa.warp.channels.send("errors", "too old to find");
      // Windows of 1, 2, 4, … 512 messages: ten of them cover 1,023, fewer than the private ones.
      for (let batch = 0; batch < 11; batch++)
        await Promise.all(
          Array.from({ length: 100 }, () => wa.warp.channels.send("errors", "hidden", "private")),
        );
      const page = await wb.warp.channels.read("errors", { limit: 1 });
      expect(page.messages).toEqual([]);
      expect(page.nextCursor).toBe(1_102);
      expect(page.hasMore).toBe(false);
      // Reading forward from the start finds it.
      const first = await wb.warp.channels.read("errors", { cursor: 1, limit: 1 });
      expect(first.messages.map((m) => m.message)).toEqual(["too old to find"]);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("the newest page is right after the stream grew, lost messages or was purged since the last read", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    const stream = streams.channel(p, "roadmap");
    try {
      for (let i = 0; i < 5; i++) await wa.warp.channels.send("roadmap", `m${i}`);
      expect((await wb.warp.channels.read("roadmap", { limit: 3 })).messages.map((m) => m.message)).toEqual([
        "m2",
        "m3",
        "m4",
      ]);
      // bob's guess of the end is now far behind.
      for (let i = 5; i < 200; i++) await wa.warp.channels.send("roadmap", `m${i}`);
      const grown = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(grown.messages.map((m) => m.message)).toEqual(["m197", "m198", "m199"]);
      expect(grown).toMatchObject({ nextCursor: 201, hasMore: false });

      // A message deleted inside the newest window: the page takes the next older one.
      const jsm = await wb.fabric.jsm();
      await jsm.streams.deleteMessage(stream, 199);
      const holed = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(holed.messages.map((m) => m.message)).toEqual(["m196", "m197", "m199"]);

      await jsm.streams.purge(stream);
      const purged = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(purged).toMatchObject({ messages: [], nextCursor: 201, hasMore: false });
      await wa.warp.channels.send("roadmap", "fresh");
      const fresh = await wb.warp.channels.read("roadmap", { limit: 3 });
      expect(fresh.messages.map((m) => m.message)).toEqual(["fresh"]);
      expect(fresh.nextCursor).toBe(202);
    } finally {
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("repeated newest-page reads cost one request while the channel is unchanged, two after appends", async () => {
    const p = uniqueProjectId();
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" } });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    const stream = streams.channel(p, "roadmap");
    const spy = await spyOnJetStream(stream);
    const requestsOf = (read: () => Promise<unknown>) => spy.requestsOf(wb.fabric.nc, read);
    const newest = () => wb.warp.channels.read("roadmap", { limit: 10 });
    try {
      for (let i = 0; i < 50; i++) await wa.warp.channels.send("roadmap", `m${i}`);
      await wb.warp.channels.read("roadmap", { cursor: 41, limit: 5 });
      // bob knows roughly where the channel ends: one consumer, one pull (the stream info runs alongside).
      expect(await requestsOf(newest)).toEqual(["CONSUMER.CREATE", "CONSUMER.MSG.NEXT", "STREAM.INFO"]);
      expect(await requestsOf(newest)).toEqual(["STREAM.INFO"]);
      expect((await newest()).messages.map((m) => m.message)).toEqual(
        Array.from({ length: 10 }, (_, i) => `m${40 + i}`),
      );
      await wa.warp.channels.send("roadmap", "m50", "private");
      await wa.warp.channels.send("roadmap", "m51");
      let page: Awaited<ReturnType<typeof newest>> | undefined;
      expect(
        await requestsOf(async () => {
          page = await newest();
        }),
      ).toEqual(["CONSUMER.MSG.NEXT", "STREAM.INFO"]);
      expect(page?.messages.map((m) => m.message)).toEqual([
        ...Array.from({ length: 9 }, (_, i) => `m${41 + i}`),
        "m51",
      ]);
      expect(page).toMatchObject({ nextCursor: 53, hasMore: false });
      // A smaller page is cut from the cached one; a larger one is read again.
      expect((await wb.warp.channels.read("roadmap", { limit: 2 })).messages.map((m) => m.message)).toEqual([
        "m49",
        "m51",
      ]);
      // (m50 is alice's private message: the newest 30 bob may see reach into an older window.)
      let wide: Awaited<ReturnType<typeof newest>> | undefined;
      expect(
        await requestsOf(async () => {
          wide = await wb.warp.channels.read("roadmap", { limit: 30 });
        }),
      ).toEqual([
        "CONSUMER.CREATE",
        "CONSUMER.CREATE",
        "CONSUMER.MSG.NEXT",
        "CONSUMER.MSG.NEXT",
        "STREAM.INFO",
      ]);
      expect(wide?.messages.map((m) => m.message)).toEqual([
        ...Array.from({ length: 29 }, (_, i) => `m${21 + i}`),
        "m51",
      ]);
    } finally {
      await spy.close();
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });

  it("the remembered newest page follows a channel that drops its oldest messages, without reading afresh", async () => {
    const p = uniqueProjectId();
    const file = { warp: { channels: [{ name: "tiny", maxMessages: 6 }] } };
    const a = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "alice" }, file });
    const b = projectConfig(nats.url, p, { env: { LOOMINAL_AGENT_NAME: "bob" }, dir: a.dir });
    const wa = await openWarp(a.config, locks.path);
    const wb = await openWarp(b.config, locks.path);
    const spy = await spyOnJetStream(streams.channel(p, "tiny"));
    const newest = () => wb.warp.channels.read("tiny", { limit: 4 });
    try {
      for (let i = 0; i < 6; i++) await wa.warp.channels.send("tiny", `m${i}`);
      expect((await newest()).messages.map((m) => m.message)).toEqual(["m2", "m3", "m4", "m5"]);
      // Two more push the two oldest out: the page moves on with one pull.
      await wa.warp.channels.send("tiny", "m6");
      await wa.warp.channels.send("tiny", "m7");
      let page: Awaited<ReturnType<typeof newest>> | undefined;
      expect(
        await spy.requestsOf(wb.fabric.nc, async () => {
          page = await newest();
        }),
      ).toEqual(["CONSUMER.MSG.NEXT", "STREAM.INFO"]);
      expect(page?.messages.map((m) => m.message)).toEqual(["m4", "m5", "m6", "m7"]);
      // A purge drops everything the page held.
      await (await wb.fabric.jsm()).streams.purge(streams.channel(p, "tiny"));
      expect(await spy.requestsOf(wb.fabric.nc, async () => (page = await newest()))).toEqual([
        "STREAM.INFO",
      ]);
      expect(page).toMatchObject({ messages: [], nextCursor: 9, hasMore: false });
      await wa.warp.channels.send("tiny", "m8");
      expect((await newest()).messages.map((m) => m.message)).toEqual(["m8"]);
    } finally {
      await spy.close();
      await wa.close();
      await wb.close();
      a.cleanup();
    }
  });
});
