import { rmSync } from "node:fs";
import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import {
  bucketKeys,
  ensureBucket,
  ensureStream,
  forgetStream,
  streamInfo,
  withBucket,
  withStream,
} from "./streams.js";

let server: NatsServer;
const fabrics: Fabric[] = [];

async function open(): Promise<Fabric> {
  const f = await Fabric.connect({
    nats: { servers: [server.url] },
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 250,
    requestTimeoutMs: 1_000,
  });
  fabrics.push(f);
  return f;
}

// Its own server: one test wipes the store.
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await Promise.all(fabrics.map((f) => f.close()));
  await server.stop();
});

const streamName = () => `rec_${uniqueProjectId().replace(/-/g, "_")}`;

describe("ensureStream recovers from a stream that disappeared", () => {
  it("creates the stream again after forgetStream", async () => {
    const f = await open();
    const name = streamName();
    const spec = { name, subjects: [`${name}.>`] };
    await ensureStream(f, spec);
    await (await open().then((o) => o.jsm())).streams.delete(name);
    forgetStream(f, name);
    await ensureStream(f, spec);
    expect(await streamInfo(await f.jsm(), name)).toBeDefined();
  });

  it("withStream recreates a deleted stream and retries the publish once", async () => {
    const f = await open();
    const name = streamName();
    const spec = { name, subjects: [`${name}.>`] };
    const publish = () => withStream(f, spec, () => f.js.publish(`${name}.a`, "x"));
    expect((await publish()).seq).toBe(1);
    // Deleted by someone else: this connection's cache still says "ensured".
    await (await (await open()).jsm()).streams.delete(name);
    const ack = await publish();
    expect(ack.stream).toBe(name);
    expect(ack.seq).toBe(1);
  });

  it("withBucket recreates a deleted bucket and retries the write", async () => {
    const f = await open();
    const spec = { name: `rec-${uniqueProjectId()}` };
    await withBucket(f, spec, (kv) => kv.put("k", "v1"));
    await (await (await open()).jsm()).streams.delete(`KV_${spec.name}`);
    await withBucket(f, spec, (kv) => kv.put("k", "v2"));
    const value = await withBucket(f, spec, async (kv) => (await kv.get("k"))?.string());
    expect(value).toBe("v2");
  });

  it("leaves other failures alone: a stream that exists is not recreated", async () => {
    const f = await open();
    const name = streamName();
    const spec = { name, subjects: [`${name}.>`] };
    await expect(
      withStream(f, spec, async () => {
        throw new Error("no responders: not about the stream");
      }),
    ).rejects.toThrow("not about the stream");
    expect((await streamInfo(await f.jsm(), name))?.state.messages).toBe(0);
  });

  it("after a server comes back with an empty store, ensureStream and ensureBucket create them again", async () => {
    const f = await open();
    const name = streamName();
    const spec = { name, subjects: [`${name}.>`] };
    const bucket = { name: `rec-${uniqueProjectId()}` };
    await ensureStream(f, spec);
    await ensureBucket(f, bucket);
    await server.kill();
    rmSync(server.storeDir, { recursive: true, force: true });
    await server.restart();
    await eventually(() => expect(f.isConnected).toBe(true), { timeoutMs: 15_000 });
    await ensureStream(f, spec);
    expect(await streamInfo(await f.jsm(), name)).toBeDefined();
    const kv = await ensureBucket(f, bucket);
    await kv.put("k", "v");
    expect((await kv.get("k"))?.string()).toBe("v");
  });
});

describe("bucketKeys", () => {
  it("lists the keys under a filter from the stream, without a consumer, including ones replaced mid-listing", async () => {
    const f = await open();
    const name = `keys-${uniqueProjectId()}`;
    const kv = await ensureBucket(f, { name, history: 1, ttlMs: 60_000 });
    for (let i = 0; i < 250; i++) await kv.put(`a.k${i}`, "v");
    await kv.put("b.other", "v");
    await kv.put("a.gone", "v");
    await kv.delete("a.gone");
    const listed = await bucketKeys(kv, "a.>");
    expect(listed).toHaveLength(251);
    expect(listed).toContain("a.k249");
    expect(listed).not.toContain("b.other");
    // Deleted keys are listed with their marker; their entry says so.
    expect((await kv.get("a.gone"))?.operation).toBe("DEL");
    expect(await bucketKeys(kv)).toHaveLength(252);
    expect(await bucketKeys(kv, "none.>")).toEqual([]);
  });
});
