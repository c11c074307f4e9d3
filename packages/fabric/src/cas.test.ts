import { NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { CAS_KNOWN_KEYS_MAX, casCacheStats, casUpdate, forgetRevision, rememberRevision } from "./cas.js";
import { jsonCodec } from "./codec.js";
import { Fabric } from "./connection.js";
import { LruMap } from "./lru.js";
import { KeyedSerialQueue } from "./serial.js";
import { ensureBucket } from "./streams.js";

let server: NatsServer;
let fabric: Fabric;
const counter = jsonCodec(z.object({ n: z.int() }));

beforeAll(async () => {
  server = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [server.url] } });
});
afterAll(async () => {
  await fabric.close();
  await server.stop();
});

function gate(): { open: () => void; opened: Promise<void> } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe("casUpdate's per-key queue and revision cache", () => {
  it("keeps updates of a key one at a time when forgetRevision is called while one waits", async () => {
    const kv = await ensureBucket(fabric, { name: `casq-${uniqueProjectId()}` });
    const log: string[] = [];
    let running = 0;
    let overlapped = false;
    const step = (name: string, wait?: Promise<void>) => async (cur: { n: number } | undefined) => {
      running++;
      if (running > 1) overlapped = true;
      log.push(`${name} start`);
      if (wait) await wait;
      log.push(`${name} end`);
      running--;
      return { n: (cur?.n ?? 0) + 1 };
    };
    const first = gate();
    const a = casUpdate(kv, "k", counter, step("a", first.opened));
    const b = casUpdate(kv, "k", counter, step("b"));
    // Let `a` reach its mutation, then forget the key while `b` waits behind it.
    await new Promise((r) => setTimeout(r, 50));
    forgetRevision(kv, "k");
    const c = casUpdate(kv, "k", counter, step("c"));
    await new Promise((r) => setTimeout(r, 50));
    first.open();
    const results = await Promise.all([a, b, c]);
    expect(overlapped).toBe(false);
    expect(log).toEqual(["a start", "a end", "b start", "b end", "c start", "c end"]);
    expect(results.map((r) => r.value?.n)).toEqual([1, 2, 3]);
  });

  it("a value remembered from a read saves the update its get; a stale one still lands", async () => {
    const kv = await ensureBucket(fabric, { name: `casr-${uniqueProjectId()}` });
    const revision = await kv.put("k", counter.encode({ n: 1 }));
    // What the mutation is given is the remembered value, not the stored one: no get was made.
    rememberRevision(kv, "k", revision, { n: 10 });
    const seen: number[] = [];
    const r = await casUpdate(kv, "k", counter, (cur) => {
      seen.push(cur?.n ?? -1);
      return { n: (cur?.n ?? 0) + 1 };
    });
    expect(seen).toEqual([10]);
    expect(r).toMatchObject({ changed: true, value: { n: 11 } });
    // An older revision than the one known is not remembered over it.
    rememberRevision(kv, "k", revision, { n: 99 });
    const next = await casUpdate(kv, "k", counter, (cur) => ({ n: (cur?.n ?? 0) + 1 }));
    expect(next.value).toEqual({ n: 12 });
    // A stale remembered revision (the key was written since, elsewhere): the write conflicts, the update
    // reads the stored value and writes over it.
    await kv.put("k", counter.encode({ n: 50 }));
    forgetRevision(kv, "k");
    rememberRevision(kv, "k", next.revision, { n: 12 });
    // It does not count as an attempt: one attempt is enough (the conflict is retried at once).
    const after = await casUpdate(kv, "k", counter, (cur) => ({ n: (cur?.n ?? 0) + 1 }), { maxAttempts: 1 });
    expect(after.value).toEqual({ n: 51 });
    expect((await kv.get("k"))?.json()).toEqual({ n: 51 });
  });

  it("a mutation that declines on a remembered value is asked again with the stored one", async () => {
    // Two handles stand for two processes: each remembers what it last wrote.
    const other = await Fabric.connect({ nats: { servers: [server.url] } });
    try {
      const name = `casd-${uniqueProjectId()}`;
      const a = await ensureBucket(fabric, { name });
      const b = await ensureBucket(other, { name });
      const set = jsonCodec(z.object({ ids: z.array(z.string()) }));
      const add = (id: string) => (cur: { ids: string[] } | undefined) =>
        cur?.ids.includes(id) ? undefined : { ids: [...(cur?.ids ?? []), id] };
      const remove = (id: string) => (cur: { ids: string[] } | undefined) =>
        cur?.ids.includes(id) ? { ids: cur.ids.filter((x) => x !== id) } : undefined;
      await casUpdate(a, "k", set, add("x"));
      // b adds y; a still remembers [x], where y is absent.
      await casUpdate(b, "k", set, add("y"));
      const removed = await casUpdate(a, "k", set, remove("y"));
      expect(removed.changed).toBe(true);
      expect(removed.value).toEqual({ ids: ["x"] });
      const stored = await a.get("k");
      expect(stored?.json()).toEqual({ ids: ["x"] });
      // A decline that holds on the stored value stays a decline, without a write.
      const again = await casUpdate(a, "k", set, remove("y"));
      expect(again.changed).toBe(false);
      expect((await a.get("k"))?.revision).toBe(stored?.revision);
    } finally {
      await other.close();
    }
  });

  it("starts from a revision noted with rememberRevision, and reads again when it is stale", async () => {
    const name = `casr-${uniqueProjectId()}`;
    const a = await ensureBucket(fabric, { name });
    const other = await Fabric.connect({ nats: { servers: [server.url] } });
    try {
      const b = await ensureBucket(other, { name });
      const created = await a.create("k", counter.encode({ n: 1 }));
      rememberRevision(a, "k", created, { n: 1 });
      const seen: number[] = [];
      const inc = (cur: { n: number } | undefined, revision: number) => {
        seen.push(revision);
        return { n: (cur?.n ?? 0) + 1 };
      };
      const first = await casUpdate(a, "k", counter, inc);
      expect(first.value).toEqual({ n: 2 });
      expect(seen).toEqual([created]);
      // Another process writes; what `a` noted is stale: the update conflicts, reads, and applies to the stored value.
      await b.put("k", counter.encode({ n: 10 }));
      rememberRevision(a, "k", first.revision, { n: 2 });
      const second = await casUpdate(a, "k", counter, inc);
      expect(second.value).toEqual({ n: 11 });
      expect((await a.get("k"))?.json()).toEqual({ n: 11 });
    } finally {
      await other.close();
    }
  });

  it("combinable updates waiting for a key's write share the next write; each learns its own change", async () => {
    const kv = await ensureBucket(fabric, { name: `casc-${uniqueProjectId()}` });
    const set = jsonCodec(z.object({ ids: z.array(z.string()) }));
    const add = (id: string) => (cur: { ids: string[] } | undefined) =>
      cur?.ids.includes(id) ? undefined : { ids: [...(cur?.ids ?? []), id] };
    const first = gate();
    const head = casUpdate(
      kv,
      "k",
      set,
      async (cur) => {
        await first.opened;
        return add("a")(cur);
      },
      { combine: true },
    );
    // These arrive while the first write is in flight: one write for all of them. "b" twice: the second
    // finds it already added and declines.
    const ids = ["b", "c", "b", "d", "e"];
    const waiting = ids.map((id) => casUpdate(kv, "k", set, add(id), { combine: true }));
    await new Promise((r) => setTimeout(r, 50));
    first.open();
    const h = await head;
    const results = await Promise.all(waiting);
    expect(h.value).toEqual({ ids: ["a"] });
    expect(results.map((r) => r.changed)).toEqual([true, true, false, true, true]);
    for (const r of results) {
      expect(r.value).toEqual({ ids: ["a", "b", "c", "d", "e"] });
      expect(r.revision).toBe(h.revision + 1);
    }
    expect((await kv.get("k"))?.revision).toBe(h.revision + 1);
    expect(casCacheStats(kv).queuedKeys).toBe(0);
  });

  it("a combinable mutation that throws fails its own caller only; updates without combine write alone", async () => {
    const kv = await ensureBucket(fabric, { name: `cast-${uniqueProjectId()}` });
    const first = gate();
    const head = casUpdate(
      kv,
      "k",
      counter,
      async (cur) => {
        await first.opened;
        return { n: (cur?.n ?? 0) + 1 };
      },
      { combine: true },
    );
    const inc = (cur: { n: number } | undefined) => ({ n: (cur?.n ?? 0) + 1 });
    const ok1 = casUpdate(kv, "k", counter, inc, { combine: true });
    const bad = casUpdate(
      kv,
      "k",
      counter,
      () => {
        throw new Error("refused by the caller");
      },
      { combine: true },
    );
    const ok2 = casUpdate(kv, "k", counter, inc, { combine: true });
    const alone = casUpdate(kv, "k", counter, inc);
    await new Promise((r) => setTimeout(r, 50));
    first.open();
    const h = await head;
    await expect(bad).rejects.toThrow("refused by the caller");
    const [r1, r2, r3] = await Promise.all([ok1, ok2, alone]);
    expect(r1.value?.n).toBe(3);
    expect(r2.value?.n).toBe(3);
    expect(r1.revision).toBe(h.revision + 1);
    // The update without combine came after the batch, in a write of its own.
    expect(r3.value?.n).toBe(4);
    expect(r3.revision).toBe(h.revision + 2);
  });

  it("remembers revisions of at most CAS_KNOWN_KEYS_MAX keys, and holds no queue for idle keys", async () => {
    const kv = await ensureBucket(fabric, { name: `casl-${uniqueProjectId()}` });
    const keys = CAS_KNOWN_KEYS_MAX + 100;
    const chunk = 250;
    for (let i = 0; i < keys; i += chunk) {
      await Promise.all(
        Array.from({ length: Math.min(chunk, keys - i) }, (_, j) =>
          casUpdate(kv, `k${i + j}`, counter, () => ({ n: 1 })),
        ),
      );
    }
    expect(casCacheStats(kv)).toEqual({ knownKeys: CAS_KNOWN_KEYS_MAX, queuedKeys: 0 });
    // A key forgotten by the bound is read again and updated correctly.
    const again = await casUpdate(kv, "k0", counter, (cur) => ({ n: (cur?.n ?? 0) + 1 }));
    expect(again.value?.n).toBe(2);
  });
});

describe("KeyedSerialQueue", () => {
  it("runs tasks of one key in order, other keys concurrently, and survives a failing task", async () => {
    const q = new KeyedSerialQueue();
    const order: string[] = [];
    const hold = gate();
    const a1 = q.run("a", async () => {
      await hold.opened;
      order.push("a1");
    });
    const a2 = q.run("a", async () => {
      order.push("a2");
      throw new Error("a2 failed");
    });
    const a3 = q.run("a", () => {
      order.push("a3");
      return 3;
    });
    const b1 = q.run("b", () => {
      order.push("b1");
    });
    await b1;
    expect(order).toEqual(["b1"]);
    expect(q.busy("a")).toBe(true);
    hold.open();
    await a1;
    await expect(a2).rejects.toThrow("a2 failed");
    await expect(a3).resolves.toBe(3);
    expect(order).toEqual(["b1", "a1", "a2", "a3"]);
    await new Promise((r) => setTimeout(r, 0));
    expect(q.size).toBe(0);
  });
});

describe("LruMap", () => {
  it("drops the entry used longest ago when full", () => {
    const m = new LruMap<string, number>(2);
    m.set("a", 1).set("b", 2);
    expect(m.get("a")).toBe(1);
    m.set("c", 3);
    expect(m.has("b")).toBe(false);
    expect([m.get("a"), m.get("c"), m.size]).toEqual([1, 3, 2]);
    expect(() => new LruMap(0)).toThrow(/positive integer/);
  });
});
