import { eventually, NatsServer, sleep, TcpProxy, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Fabric } from "./connection.js";
import { Lease, leaseBucket } from "./lease.js";
import { ensureBucket } from "./streams.js";

let server: NatsServer;
const fabrics: Fabric[] = [];

async function open(url = server.url, requestTimeoutMs?: number): Promise<Fabric> {
  const f = await Fabric.connect({
    nats: { servers: [url] },
    ...(requestTimeoutMs ? { requestTimeoutMs } : {}),
  });
  fabrics.push(f);
  return f;
}

// Its own server: one test freezes it.
beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await Promise.all(fabrics.map((f) => f.close()));
  await server.stop();
});

describe("Lease", () => {
  it("survives a server frozen for less than the TTL: renewals queue up one at a time, no false loss", async () => {
    const kv = await leaseBucket(await open(), `lease-${uniqueProjectId()}`, 6_000);
    const lease = await Lease.acquire(kv, "leader", { holder: "me", renewIntervalMs: 100 });
    const lost: string[] = [];
    lease.onLost((reason) => lost.push(reason));
    server.pause();
    try {
      // Several renewal ticks fall into the pause; overlapping renewals would lose their CAS to each other.
      await sleep(1_000);
    } finally {
      server.resume();
    }
    expect(await lease.renew()).toBe(true);
    expect(await lease.renew()).toBe(true);
    expect(lost).toEqual([]);
    expect(lease.held).toBe(true);
    expect(lease.signal.aborted).toBe(false);
    await lease.release();
  });

  it("a holder cut off for longer than the TTL reports the loss before anyone else acquires", async () => {
    const bucket = `lease-${uniqueProjectId()}`;
    const ttlMs = 2_000;
    const proxy = await TcpProxy.start(server.port);
    try {
      const holderKv = await leaseBucket(await open(proxy.url, 500), bucket, ttlMs);
      const otherKv = await leaseBucket(await open(), bucket, ttlMs);
      const events: string[] = [];
      const lease = await Lease.acquire(holderKv, "leader", {
        holder: "cut-off",
        renewIntervalMs: 300,
        safetyMarginMs: 600,
      });
      lease.onLost(() => events.push("holder lost"));
      lease.signal.addEventListener("abort", () => events.push("holder signal aborted"));
      proxy.cut();
      const successor = await eventually(
        async () => {
          const l = await Lease.tryAcquire(otherKv, "leader", {
            holder: "successor",
            renewIntervalMs: 300,
            ttlMs,
          });
          if (!l) throw new Error("still held");
          events.push("successor acquired");
          return l;
        },
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      expect(events).toEqual(["holder signal aborted", "holder lost", "successor acquired"]);
      expect(lease.held).toBe(false);
      // Back online, the old holder's delayed renewal cannot overwrite the successor's key.
      proxy.restore();
      expect(await lease.renew()).toBe(false);
      expect(await Lease.holderOf(otherKv, "leader")).toBe("successor");
      expect(successor.held).toBe(true);
      await successor.release();
    } finally {
      await proxy.close();
    }
  });

  it("a key rewritten with its own token is still held; one rewritten by someone else is lost", async () => {
    const f = await open();
    const bucket = `lease-${uniqueProjectId()}`;
    const kv = await leaseBucket(f, bucket, 10_000);
    const other = await leaseBucket(await open(), bucket, 10_000);
    const lease = await Lease.acquire(kv, "leader", { holder: "me", renewIntervalMs: 3_000 });
    // As if an earlier renewal had landed after its answer was lost: same record, new revision.
    const mine = await other.get("leader");
    if (!mine) throw new Error("no key");
    await other.put("leader", mine.value);
    expect(await lease.renew()).toBe(true);
    expect(lease.held).toBe(true);

    const reasons: string[] = [];
    lease.onLost((r) => reasons.push(r));
    await other.put("leader", JSON.stringify({ holder: "thief", token: "x", acquiredAt: "", renewedAt: "" }));
    expect(await lease.renew()).toBe(false);
    expect(lease.held).toBe(false);
    expect(reasons).toEqual(["the key expired or another holder took it"]);
    // Releasing a lost lease leaves the other holder's key alone.
    await lease.release();
    expect(await Lease.holderOf(other, "leader")).toBe("thief");
  });

  it("release deletes the key even after a rewrite, so the next holder gets it at once", async () => {
    const kv = await leaseBucket(await open(), `lease-${uniqueProjectId()}`, 10_000);
    const lease = await Lease.acquire(kv, "leader", { holder: "first", renewIntervalMs: 3_000 });
    const entry = await kv.get("leader");
    if (!entry) throw new Error("no key");
    await kv.put("leader", entry.value);
    await lease.release();
    expect(lease.held).toBe(false);
    expect(lease.signal.aborted).toBe(true);
    expect(await Lease.holderOf(kv, "leader")).toBeUndefined();
    const next = await Lease.tryAcquire(kv, "leader", { holder: "second", renewIntervalMs: 3_000 });
    expect(next?.held).toBe(true);
    await next?.release();
    await lease.release();
  });

  it("refuses a bucket without TTL and a renewal interval that cannot beat the deadline", async () => {
    const f = await open();
    const noTtl = await ensureBucket(f, { name: `lease-${uniqueProjectId()}` });
    await expect(Lease.tryAcquire(noTtl, "x", { holder: "me", renewIntervalMs: 100 })).rejects.toThrow(
      /has no TTL, so its leases would never expire/,
    );
    const kv = await leaseBucket(f, `lease-${uniqueProjectId()}`, 1_000);
    await expect(Lease.tryAcquire(kv, "x", { holder: "me", renewIntervalMs: 900 })).rejects.toThrow(
      /renewIntervalMs 900 must be under the TTL less the margin \(800 ms\)/,
    );
  });
});
