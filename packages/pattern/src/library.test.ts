import { Fabric } from "@loominal/fabric";
import { LoominalError, randomId, type Scope } from "@loominal/protocol";
import { eventually, NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidMemoryInputError } from "./errors.js";
import { MemoryStore, type MemoryStoreOptions } from "./store.js";
import { exportMemories, importMemories } from "./transfer.js";

let nats: NatsServer;
let fabric: Fabric;

beforeAll(async () => {
  nats = await NatsServer.start();
  fabric = await Fabric.connect({ nats: { servers: [nats.url] } });
});
afterAll(async () => {
  await fabric.close();
  await nats.stop();
});

function newStore(options: Partial<MemoryStoreOptions> = {}): MemoryStore {
  return new MemoryStore({
    fabric,
    identity: { projectId: uniqueProjectId(), agentId: randomId(), userId: randomId() },
    ...options,
  });
}

async function invalidInput(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidMemoryInputError);
  expect((err as LoominalError).code).toBe("invalid_input");
  return (err as Error).message;
}

describe("library entry points validate their input like the tools", () => {
  it("recallContext, search, list and cleanup answer invalid_input, never TypeError or an empty result", async () => {
    const store = newStore();
    try {
      await store.remember({ content: "something to find", category: "longterm" });
      const bogusScope = ["galaxy"] as unknown as Scope[];
      expect(await invalidInput(store.recallContext({ scopes: bogusScope }))).toContain("scopes");
      expect(await invalidInput(store.recallContext({ limit: -1 }))).toContain("limit");
      expect(await invalidInput(store.recallContext({ maxBytes: 10 }))).toContain("maxBytes");
      expect(await invalidInput(store.recallContext({ since: "yesterday" }))).toContain("since");
      await invalidInput(store.recallContext({ tags: [" "] }));
      await invalidInput(store.search("something", { scopes: bogusScope }));
      expect(await invalidInput(store.search("something", { limit: -3 }))).toContain("limit");
      expect(await invalidInput(store.search("   "))).toContain("query");
      await invalidInput(store.list({ scopes: bogusScope }));
      await invalidInput(store.list({ categories: ["nope"] as never }));
      expect(await invalidInput(store.cleanup({ olderThanMs: -1 }))).toContain("olderThanMs");
      await invalidInput(store.forgetBulk([], {}));
      await invalidInput(store.rememberBulk([]));
      // Filters are bounded: a huge array is refused, not scanned.
      const huge = Array(100_000).fill("private") as Scope[];
      expect(await invalidInput(store.list({ scopes: huge }))).toContain("scopes");
      expect(await invalidInput(store.recallContext({ tags: Array(100_000).fill("t") }))).toContain("tags");
      expect(await invalidInput(store.search("find", { scopes: huge }))).toContain("scopes");

      // Valid input still works, with the tools' defaults.
      expect((await store.recallContext({ scopes: ["private"] })).matched).toBe(1);
      expect((await store.search("find")).hits).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it("exportMemories and importMemories validate their options", async () => {
    const store = newStore();
    const dir = tempDir("pattern-lib-");
    try {
      await invalidInput(exportMemories(store, dir.path, { scope: "galaxy" as Scope }));
      await invalidInput(exportMemories(store, dir.path, { path: "" }));
      await invalidInput(importMemories(store, dir.path, { path: "" }));
      await invalidInput(importMemories(store, dir.path, { path: "x.json", skipDuplicates: "no" as never }));
    } finally {
      await store.close();
      dir.cleanup();
    }
  });
});

describe("public memories held per process", () => {
  it("a reader holds at most maxPublicMemories, keeping the most recently written", async () => {
    const writer = newStore();
    const reader = newStore({ maxPublicMemories: 3 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await writer.remember({ content: `public note ${i}`, scope: "public" });
        ids.push(r.memory.id);
      }
      const seen = (await reader.list({ scopes: ["public"] })).map((m) => m.id);
      expect(seen.sort()).toEqual(ids.slice(-3).sort());
      const view = (await reader.health()).views.find((v) => v.prefix === "p.>");
      expect(view).toMatchObject({ memories: 3, limit: 3 });
      expect(view?.dropped).toBeGreaterThanOrEqual(2);

      // A newer public memory replaces the oldest one held.
      const latest = await writer.remember({ content: "public note latest", scope: "public" });
      await eventually(async () => {
        const now = (await reader.list({ scopes: ["public"] })).map((m) => m.id);
        expect(now.sort()).toEqual([...ids.slice(-2), latest.memory.id].sort());
      });
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it("rejects a cap that is not a positive integer", () => {
    expect(() => newStore({ maxPublicMemories: 0 })).toThrow(LoominalError);
    expect(() => newStore({ maxTeamMemories: 0 })).toThrow(LoominalError);
  });
});

describe("team memories held per process", () => {
  it("a reader holds at most maxTeamMemories of its project, keeping the most recently written", async () => {
    const projectId = uniqueProjectId();
    const identity = () => ({ projectId, agentId: randomId(), userId: randomId() });
    const writer = newStore({ identity: identity() });
    const reader = newStore({ identity: identity(), maxTeamMemories: 3 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await writer.remember({ content: `team note ${i}`, scope: "team", category: "decisions" });
        ids.push(r.memory.id);
      }
      const seen = (await reader.list({ scopes: ["team"] })).map((m) => m.id);
      expect(seen.sort()).toEqual(ids.slice(-3).sort());
      const view = (await reader.health()).views.find((v) => v.prefix === "t.>");
      expect(view).toMatchObject({ memories: 3, limit: 3 });
      expect(view?.dropped).toBeGreaterThanOrEqual(2);
      expect((await reader.health()).settings.maxTeamMemories).toBe(3);
      // The writer's own view is not capped that low: it sees all five.
      expect((await writer.list({ scopes: ["team"] })).length).toBe(5);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});
