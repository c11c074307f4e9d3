import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { ensureBucket } from "./streams.js";
import { type BucketChange, watchBucket } from "./watch.js";

let server: NatsServer;
let fabric: Fabric;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({
    nats: { servers: [server.url] },
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 250,
  });
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

const text = (c: BucketChange) => `${c.key}=${new TextDecoder().decode(c.value)}`;

describe("watchBucket", () => {
  it("delivers the current values, then changes, in revision order", async () => {
    const spec = { name: `w-${uniqueProjectId()}` };
    const kv = await ensureBucket(fabric, spec);
    await kv.put("a", "1");
    await kv.put("b", "1");
    const seen: string[] = [];
    const watch = watchBucket(fabric, spec, (c) => void seen.push(text(c)), { include: "last" });
    try {
      await eventually(() => expect(seen).toEqual(["a=1", "b=1"]));
      await kv.put("a", "2");
      await eventually(() => expect(seen).toEqual(["a=1", "b=1", "a=2"]));
    } finally {
      await watch.stop();
    }
    await watch.closed;
  });

  it("keeps following after its consumer is deleted, without missing a change", async () => {
    const spec = { name: `w-${uniqueProjectId()}` };
    const kv = await ensureBucket(fabric, spec);
    const seen: string[] = [];
    const watch = watchBucket(fabric, spec, (c) => void seen.push(text(c)), { idleHeartbeatMs: 500 });
    await watch.ready;
    try {
      await kv.put("a", "1");
      await eventually(() => expect(seen).toEqual(["a=1"]));
      const jsm = await fabric.jsm();
      for (const c of await jsm.consumers.list(`KV_${spec.name}`).next())
        await jsm.consumers.delete(`KV_${spec.name}`, c.name);
      await kv.put("b", "1");
      await kv.put("c", "1");
      await eventually(() => expect(seen).toEqual(["a=1", "b=1", "c=1"]), { timeoutMs: 20_000 });
    } finally {
      await watch.stop();
    }
  });

  it("re-creates a deleted bucket, reports the restart, and delivers what the new bucket holds", async () => {
    const spec = { name: `w-${uniqueProjectId()}` };
    const kv = await ensureBucket(fabric, spec);
    const seen: string[] = [];
    const restarts: string[] = [];
    const watch = watchBucket(fabric, spec, (c) => void seen.push(text(c)), {
      idleHeartbeatMs: 500,
      restartDelayMs: 50,
      onRestart: (r) => restarts.push(r.reason),
    });
    await watch.ready;
    try {
      await kv.put("a", "1");
      await eventually(() => expect(seen).toEqual(["a=1"]));
      const jsm = await fabric.jsm();
      await jsm.streams.delete(`KV_${spec.name}`);
      await eventually(() => expect(watch.restarts).toBeGreaterThan(0), { timeoutMs: 20_000 });
      const again = await ensureBucket(fabric, spec);
      await again.put("b", "2");
      await eventually(() => expect(seen).toEqual(["a=1", "b=2"]), { timeoutMs: 20_000 });
      expect(restarts[0]).toMatch(/gone|closed|ended/);
    } finally {
      await watch.stop();
    }
  });

  it("keeps following across a server restart that lost the store", async () => {
    const own = await NatsServer.start();
    const f = await Fabric.connect({
      nats: { servers: [own.url] },
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 250,
    });
    const spec = { name: `w-${uniqueProjectId()}` };
    const seen: string[] = [];
    const watch = watchBucket(f, spec, (c) => void seen.push(text(c)), {
      idleHeartbeatMs: 500,
      restartDelayMs: 50,
    });
    try {
      await eventually(async () => {
        await (await ensureBucket(f, spec)).put("a", "1");
        expect(seen).toContain("a=1");
      });
      await own.kill();
      await own.stop({ removeStore: true });
      const fresh = await NatsServer.start({ port: own.port });
      try {
        await f.ready(10_000);
        await eventually(
          async () => {
            await (await ensureBucket(f, spec)).put("b", "2");
            expect(seen).toContain("b=2");
          },
          { timeoutMs: 20_000 },
        );
      } finally {
        await watch.stop();
        await f.close();
        await fresh.stop();
      }
    } finally {
      await watch.stop();
    }
  });
});
