import { Fabric } from "@loominal/fabric";
import { buckets, keys, randomId } from "@loominal/protocol";
import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreMemoryLimitError } from "./errors.js";
import { MemoryStore } from "./store.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

/** A store with its own NATS connection, as a separate process would have. */
async function openStore(userId: string, maxCoreMemories: number) {
  const fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
  const store = new MemoryStore({
    fabric,
    identity: { projectId: uniqueProjectId(), agentId: randomId(), userId },
    maxCoreMemories,
  });
  return {
    fabric,
    store,
    async close() {
      await store.close();
      await fabric.close();
    },
  };
}

async function liveCoreKeys(fabric: Fabric, userId: string): Promise<string[]> {
  const kv = await fabric.kvm.open(buckets.memoryPersonal());
  const out: string[] = [];
  for await (const k of await kv.keys(`${keys.memoryPersonalPrefix(userId).slice(0, -1)}core.>`)) out.push(k);
  return out;
}

describe("core memory limit", () => {
  it("holds across two stores writing core memories for the same user at the same time", async () => {
    const user = randomId();
    const limit = 4;
    const one = await openStore(user, limit);
    const two = await openStore(user, limit);
    try {
      for (let i = 0; i < limit - 1; i++)
        await one.store.remember({ content: `core ${i}`, category: "core" });
      // Both processes know about the memories already there: one slot is left, and both race for it.
      await eventually(async () => {
        expect(await two.store.list({ scopes: ["personal"] })).toHaveLength(limit - 1);
      });
      const attempts = [one, two].flatMap((s, n) =>
        Array.from({ length: 3 }, (_, i) =>
          s.store.remember({ content: `race ${n}.${i}`, category: "core" }).then(
            (r) => ({ ok: true as const, id: r.memory.id }),
            (err: unknown) => ({ ok: false as const, err }),
          ),
        ),
      );
      const results = await Promise.all(attempts);
      for (const r of results) if (!r.ok) expect(r.err).toBeInstanceOf(CoreMemoryLimitError);
      const won = results.flatMap((r) => (r.ok ? [r.id] : []));
      expect(won).toHaveLength(1);

      const live = await liveCoreKeys(one.fabric, user);
      expect(live).toHaveLength(limit);
      expect(live.map((k) => k.split(".").at(-1))).toContain(won[0]);

      // Full for both: a later write is refused in either process and leaves nothing behind.
      await expect(one.store.remember({ content: "late", category: "core" })).rejects.toBeInstanceOf(
        CoreMemoryLimitError,
      );
      await expect(two.store.remember({ content: "late", category: "core" })).rejects.toBeInstanceOf(
        CoreMemoryLimitError,
      );
      expect(await liveCoreKeys(two.fabric, user)).toHaveLength(limit);
    } finally {
      await one.close();
      await two.close();
    }
  });

  it("lets exactly the limit through when two fresh stores start from none at the same time", async () => {
    // Each round loads both views while the other store writes and retracts: loading must not stall.
    for (let round = 0; round < 5; round++) {
      const user = randomId();
      const limit = 5;
      const one = await openStore(user, limit);
      const two = await openStore(user, limit);
      try {
        const attempts = [one, two].flatMap((s, n) =>
          Array.from({ length: 6 }, (_, i) =>
            s.store.remember({ content: `core ${n}.${i}`, category: "core" }).then(
              () => true,
              (err: unknown) => {
                expect(err).toBeInstanceOf(CoreMemoryLimitError);
                return false;
              },
            ),
          ),
        );
        expect((await Promise.all(attempts)).filter(Boolean)).toHaveLength(limit);
        expect(await liveCoreKeys(one.fabric, user)).toHaveLength(limit);
      } finally {
        await one.close();
        await two.close();
      }
    }
  });

  it("frees a slot in every process once a core memory forgotten in one of them reaches it", async () => {
    const user = randomId();
    const one = await openStore(user, 2);
    const two = await openStore(user, 2);
    try {
      const first = await one.store.remember({ content: "first", category: "core" });
      await one.store.remember({ content: "second", category: "core" });
      await expect(two.store.remember({ content: "third", category: "core" })).rejects.toBeInstanceOf(
        CoreMemoryLimitError,
      );
      await one.store.forget(first.memory.id, { force: true });
      await eventually(async () => {
        expect(await two.store.list({ scopes: ["personal"] })).toHaveLength(1);
      });
      const third = await two.store.remember({ content: "third", category: "core" });
      expect(third.memory.category).toBe("core");
      expect(await liveCoreKeys(one.fabric, user)).toHaveLength(2);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
