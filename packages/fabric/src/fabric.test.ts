import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { eventually, NatsServer, sleep, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { casUpdate } from "./cas.js";
import { jsonCodec } from "./codec.js";
import { Fabric } from "./connection.js";
import { CasConflictError, ConfigMismatchError, NatsUnavailableError } from "./errors.js";
import { Lease, leaseBucket } from "./lease.js";
import { ensureBucket, ensureStream } from "./streams.js";

let server: NatsServer;
const fabrics: Fabric[] = [];

async function open(): Promise<Fabric> {
  const f = await Fabric.connect({
    nats: { servers: [server.url] },
    reconnectDelayMs: 50,
    maxReconnectDelayMs: 250,
  });
  fabrics.push(f);
  return f;
}

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await Promise.all(fabrics.map((f) => f.close()));
  await server.stop();
});

describe("Fabric connection", () => {
  it("reports the server version and what it supports", async () => {
    const f = await open();
    expect(f.features.version.major).toBeGreaterThanOrEqual(2);
    if (f.features.version.minor < 10 && f.features.version.major === 2) {
      expect(f.features.multiFilter).toBe(false);
      expect(f.features.perMessageTtl).toBe(false);
    }
  });

  it("fails fast with a clear error when nothing listens", async () => {
    await expect(Fabric.connect({ nats: { servers: ["nats://127.0.0.1:1"] } })).rejects.toThrow(
      /NATS unreachable at nats:\/\/127\.0\.0\.1:1/,
    );
  });

  it("starts in the background without a server and connects once one appears", async () => {
    const late = await NatsServer.start({ jetstream: false });
    const port = late.port;
    await late.stop();
    const f = Fabric.start({
      nats: { servers: [`nats://127.0.0.1:${port}`] },
      reconnectDelayMs: 50,
      maxReconnectDelayMs: 200,
    });
    fabrics.push(f);
    expect(() => f.nc).toThrow(NatsUnavailableError);
    await expect(f.ready(100)).rejects.toThrow(/NATS unreachable/);
    const again = await NatsServer.start({ jetstream: false, port });
    try {
      await f.ready(10_000);
      expect(f.isConnected).toBe(true);
    } finally {
      await f.close();
      await again.stop();
    }
  });

  it("reconnects after the server is killed -9 and stores every acknowledged publish exactly once", async () => {
    const f = await open();
    const p = uniqueProjectId();
    const name = `restart_${p.replace(/-/g, "_")}`;
    await ensureStream(f, { name, subjects: [`${name}.>`], duplicateWindowMs: 120_000 });
    const acked: number[] = [];
    let stop = false;
    const publisher = (async () => {
      for (let i = 0; i < 5_000 && !stop; i++) {
        try {
          await f.js.publish(`${name}.x`, String(i), { msgID: `m${i}`, timeout: 1_000 });
          acked.push(i);
        } catch {
          // Not acknowledged: the publisher retries the same id, as a real producer would.
          i--;
          await sleep(20);
        }
      }
    })();
    await eventually(() => expect(acked.length).toBeGreaterThan(50));
    await server.kill();
    await server.restart();
    await eventually(() => expect(f.isConnected).toBe(true), { timeoutMs: 15_000 });
    const before = acked.length;
    await eventually(() => expect(acked.length).toBeGreaterThan(before + 50), { timeoutMs: 15_000 });
    stop = true;
    await publisher;
    const jsm = await f.jsm();
    const info = await jsm.streams.info(name);
    const count = new Map<number, number>();
    const consumer = await f.js.consumers.get(name);
    let read = 0;
    while (read < info.state.messages) {
      const batch = await consumer.fetch({ max_messages: info.state.messages - read, expires: 5_000 });
      for await (const m of batch) {
        read++;
        const i = Number(m.string());
        count.set(i, (count.get(i) ?? 0) + 1);
      }
    }
    // msgID dedupe makes a retried publish land once, even across the kill.
    for (const i of acked) expect(count.get(i), `message ${i}`).toBe(1);
    expect([...count.values()].every((n) => n === 1)).toBe(true);
  });
});

describe("ensureStream and ensureBucket", () => {
  it("creating twice is a no-op; a different config is reported", async () => {
    const f = await open();
    const name = `ens_${uniqueProjectId().replace(/-/g, "_")}`;
    const spec = { name, subjects: [`${name}.>`], maxAgeMs: 60_000, maxMsgs: 100 };
    const a = await ensureStream(f, spec);
    const b = await ensureStream(f, { ...spec });
    expect(b.config.max_msgs).toBe(100);
    expect(b.created).toEqual(a.created);
    // A second connection (another process, in effect) sees the same stream as matching.
    const other = await open();
    await expect(ensureStream(other, spec)).resolves.toBeDefined();
    const err = await ensureStream(other, { ...spec, maxMsgs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigMismatchError);
    expect((err as ConfigMismatchError).message).toMatch(/max_msgs: existing 100, wanted 200/);
    await expect(ensureStream(other, { ...spec, maxMsgs: 200 }, "update")).resolves.toMatchObject({
      config: { max_msgs: 200 },
    });
  });

  it("reports a bucket whose TTL differs", async () => {
    const f = await open();
    const name = `b-${uniqueProjectId()}`;
    const kv = await ensureBucket(f, { name, history: 1, ttlMs: 60_000 });
    await kv.put("k", "v");
    const other = await open();
    const same = await ensureBucket(other, { name, history: 1, ttlMs: 60_000 });
    expect((await same.get("k"))?.string()).toBe("v");
    await expect(ensureBucket(other, { name, history: 1, ttlMs: 30_000 })).rejects.toThrow(
      /ttlMs: existing 60000, wanted 30000/,
    );
  });
});

describe("casUpdate", () => {
  const counter = jsonCodec(z.object({ n: z.int() }));

  it("loses no increment with 64 writers, each on its own connection, racing on one key", async () => {
    const writers = 64;
    const perWriter = 5;
    const name = `cas-${uniqueProjectId()}`;
    // One connection and one KV handle per writer, so no in-process queue serialises them: they race.
    const kvs = await Promise.all(
      Array.from({ length: writers }, async () => ensureBucket(await open(), { name, history: 1 })),
    );
    let successes = 0;
    await Promise.all(
      kvs.map(async (kv) => {
        for (let i = 0; i < perWriter; i++) {
          for (;;) {
            try {
              // Few attempts per call, so CasConflictError happens and the writer has to retry.
              await casUpdate(kv, "counter", counter, (cur) => ({ n: (cur?.n ?? 0) + 1 }), {
                maxAttempts: 3,
              });
              successes++;
              break;
            } catch (err) {
              if (!(err instanceof CasConflictError)) throw err;
            }
          }
        }
      }),
    );
    const final = await kvs[0]?.get("counter");
    expect(successes).toBe(writers * perWriter);
    expect(final?.json<{ n: number }>().n).toBe(successes);
  });

  it("leaves the key alone when the mutation declines", async () => {
    const f = await open();
    const kv = await ensureBucket(f, { name: `cas-${uniqueProjectId()}` });
    const first = await casUpdate(kv, "k", counter, () => ({ n: 1 }));
    const r = await casUpdate(kv, "k", counter, (cur) => (cur && cur.n >= 1 ? undefined : { n: 2 }));
    expect(r).toEqual({ value: { n: 1 }, revision: first.revision, changed: false });
  });
});

describe("Lease", () => {
  it("is exclusive, and a killed holder's lease is taken over after the TTL", async () => {
    const f = await open();
    const bucket = `lease-${uniqueProjectId()}`;
    const ttlMs = 1_500;
    const kv = await leaseBucket(f, bucket, ttlMs);
    const child = spawn(
      process.execPath,
      [
        fileURLToPath(new URL("../fixtures/lease-holder.mjs", import.meta.url)),
        server.url,
        bucket,
        String(ttlMs),
        "leader",
        "child",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => b.toString().includes("held") && resolve());
      child.once("exit", (code) => reject(new Error(`holder exited ${code}`)));
    });
    expect(await Lease.tryAcquire(kv, "leader", { holder: "me", renewIntervalMs: 500 })).toBeUndefined();
    await expect(Lease.acquire(kv, "leader", { holder: "me", renewIntervalMs: 500 })).rejects.toThrow(
      /held by child/,
    );
    // While the holder lives it keeps renewing, so the lease outlives its TTL.
    await sleep(ttlMs * 2);
    expect(await Lease.holderOf(kv, "leader")).toBe("child");
    child.kill("SIGKILL");
    const lease = await eventually(
      async () => {
        const l = await Lease.tryAcquire(kv, "leader", { holder: "me", renewIntervalMs: 500 });
        if (!l) throw new Error("still held");
        return l;
      },
      { timeoutMs: ttlMs * 6, intervalMs: 100 },
    );
    expect(await Lease.holderOf(kv, "leader")).toBe("me");
    await lease.release();
    expect(await Lease.holderOf(kv, "leader")).toBeUndefined();
    const again = await Lease.tryAcquire(kv, "leader", { holder: "other", renewIntervalMs: 500 });
    expect(again?.holder).toBe("other");
    await again?.release();
  });
});
