import { ensureBucket, Fabric } from "@loominal/fabric";
import { keys } from "@loominal/protocol";
import { NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listKeys, purgeUpTo, QuotaStore } from "./state.js";

let server: NatsServer;
let fabric: Fabric;

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

describe("QuotaStore", () => {
  it("keeps an emptied set (one write per release), and a walk removes it once it has stayed empty", async () => {
    const kv = await ensureBucket(fabric, { name: `quota-${uniqueProjectId()}` });
    const quotas = new QuotaStore(kv, { emptyKeepMs: 60_000 });
    for (let i = 0; i < 30; i++) {
      expect(await quotas.acquire(`u${i}`, `run-${i}`, "r1", 8)).toEqual({ admitted: true });
      await quotas.release(`u${i}`, [`run-${i}`]);
    }
    expect(await quotas.acquire("busy", "run-busy", "r1", 8)).toEqual({ admitted: true });
    // Emptied, not deleted: the set is there with no run in it, and the walk leaves it (recent).
    const emptied = await kv.get(keys.runnerQuota("u3"));
    expect(emptied?.operation).toBe("PUT");
    expect((await quotas.get("u3"))?.runs).toEqual({});
    expect((await quotas.all()).map((q) => q.user_id)).toEqual(["busy"]);
    expect(await listKeys(kv, keys.runnerQuotasPrefix())).toHaveLength(31);
    // The user comes back: one update of the kept set.
    const lastSeq = async () => (await kv.status()).streamInfo.state.last_seq;
    const stored = await lastSeq();
    expect(await quotas.acquire("u3", "run-3b", "r1", 8)).toEqual({ admitted: true });
    expect(await lastSeq()).toBe(stored + 1);
    await quotas.release("u3", ["run-3b"]);
    // A walk that finds the sets empty for long enough removes them: the next lists one key, not 31.
    const walker = new QuotaStore(kv, { emptyKeepMs: 0 });
    expect((await walker.all()).map((q) => q.user_id)).toEqual(["busy"]);
    expect(await listKeys(kv, keys.runnerQuotasPrefix())).toEqual([keys.runnerQuota("busy")]);
    // A user whose set was removed is admitted again, also by a process that remembers the removed revision.
    expect(await quotas.acquire("u3", "run-3c", "r1", 8)).toEqual({ admitted: true });
    expect((await quotas.get("u3"))?.runs).toEqual({ "run-3c": "r1" });
    expect(await walker.acquire("u4", "run-4b", "r2", 8)).toEqual({ admitted: true });
    expect((await quotas.get("u4"))?.runs).toEqual({ "run-4b": "r2" });
  });

  it("removing an emptied set never removes a set written after the walk read it", async () => {
    const kv = await ensureBucket(fabric, { name: `quota-${uniqueProjectId()}` });
    const quotas = new QuotaStore(kv);
    await quotas.acquire("u", "a", "r1", 8);
    await quotas.release("u", ["a"]);
    const seen = await kv.get(keys.runnerQuota("u"));
    expect(seen?.json()).toEqual({ user_id: "u", runs: {} });
    // Another replica admits a run for the user between the walk's read and its removal.
    await new QuotaStore(kv).acquire("u", "b", "r2", 8);
    await purgeUpTo(kv, keys.runnerQuota("u"), seen?.revision ?? 0);
    expect((await quotas.get("u"))?.runs).toEqual({ b: "r2" });
    expect((await quotas.all()).map((q) => q.user_id)).toEqual(["u"]);
    // The first store still remembers the emptied revision: its next update conflicts, reads, and keeps b.
    expect(await quotas.acquire("u", "c", "r1", 8)).toEqual({ admitted: true });
    expect((await quotas.get("u"))?.runs).toEqual({ b: "r2", c: "r1" });
  });

  it("a run already in the set keeps its slot at the cap and is noted as accepted by the replica asking again", async () => {
    const kv = await ensureBucket(fabric, { name: `quota-${uniqueProjectId()}` });
    const quotas = new QuotaStore(kv);
    expect(await quotas.acquire("u", "a", "dead", 2)).toEqual({ admitted: true });
    expect(await quotas.acquire("u", "b", "r1", 2)).toEqual({ admitted: true });
    expect(await quotas.acquire("u", "c", "r1", 2)).toEqual({ admitted: false, active: 2 });
    expect(await quotas.acquire("u", "a", "r1", 2)).toEqual({ admitted: true });
    expect((await quotas.get("u"))?.runs).toEqual({ a: "r1", b: "r1" });
    // The reaper frees a slot of a dead acceptor only while that replica is still noted.
    await quotas.release("u", ["a"], "dead");
    expect((await quotas.get("u"))?.runs).toEqual({ a: "r1", b: "r1" });
    await quotas.release("u", ["a"], "r1");
    expect((await quotas.get("u"))?.runs).toEqual({ b: "r1" });
  });
});
