import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
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

describe("channels", () => {
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
});
