import { ensureBucket, Fabric } from "@loominal/fabric";
import { keys } from "@loominal/protocol";
import { NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropDeleteMarker, listKeys, QuotaStore } from "./state.js";

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
  it("lists only users with admitted runs: the marker an emptied set leaves is dropped", async () => {
    const kv = await ensureBucket(fabric, { name: `quota-${uniqueProjectId()}` });
    const quotas = new QuotaStore(kv);
    for (let i = 0; i < 30; i++) {
      expect(await quotas.acquire(`u${i}`, `run-${i}`, "r1", 8)).toEqual({ admitted: true });
      await quotas.release(`u${i}`, [`run-${i}`]);
    }
    expect(await quotas.acquire("busy", "run-busy", "r1", 8)).toEqual({ admitted: true });
    expect((await quotas.all()).map((q) => q.user_id)).toEqual(["busy"]);
    // The walk removed the 30 markers: the next one lists one key, not 31.
    expect(await listKeys(kv, keys.runnerQuotasPrefix())).toEqual([keys.runnerQuota("busy")]);
    // A user whose marker was dropped is admitted again as before.
    expect(await quotas.acquire("u3", "run-3b", "r1", 8)).toEqual({ admitted: true });
    expect((await quotas.get("u3"))?.runs).toEqual({ "run-3b": "r1" });
  });

  it("dropping a marker never removes a set written after it", async () => {
    const kv = await ensureBucket(fabric, { name: `quota-${uniqueProjectId()}` });
    const quotas = new QuotaStore(kv);
    await quotas.acquire("u", "a", "r1", 8);
    await quotas.release("u", ["a"]);
    const marker = await kv.get(keys.runnerQuota("u"));
    expect(marker?.operation).toBe("DEL");
    // Another replica admits a run for the user between the walk's read and its drop.
    await quotas.acquire("u", "b", "r2", 8);
    await dropDeleteMarker(kv, keys.runnerQuota("u"), marker?.revision ?? 0);
    expect((await quotas.get("u"))?.runs).toEqual({ b: "r2" });
    expect((await quotas.all()).map((q) => q.user_id)).toEqual(["u"]);
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
