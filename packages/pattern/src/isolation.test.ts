import { jsonCodec } from "@loominal/fabric";
import { buckets, keys, memoryRecordSchema, randomId } from "@loominal/protocol";
import { eventually, NatsServer, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idsOf, type MemoryOut, memoryOf, openAgent } from "./pattern.test-helper.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

describe("scope isolation", () => {
  it("agent B never reads A's private or personal memories, sees team ones; another project sees neither", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice", userId: randomId() });
    const b = await openAgent(nats.url, { projectId: p, agentName: "bob", userId: randomId(), dir: a.dir });
    const c = await openAgent(nats.url, {
      projectId: uniqueProjectId(),
      agentName: "carol",
      userId: randomId(),
    });
    try {
      const priv = memoryOf(await a.ok("pattern_remember", { content: "alpha private plan" }));
      const long = memoryOf(
        await a.ok("pattern_remember", { content: "alpha private longterm", category: "longterm" }),
      );
      const core = memoryOf(await a.ok("pattern_core_memory", { content: "alpha personal core" }));
      const team = memoryOf(await a.ok("pattern_remember_learning", { content: "alpha team learning" }));
      const aSees = idsOf(
        (await a.ok("pattern_recall_context", { scopes: ["private", "personal", "team"] })).memories,
      );
      expect(aSees.sort()).toEqual([priv.id, long.id, core.id, team.id].sort());

      const hidden = [priv.id, long.id, core.id];
      await eventually(async () => {
        const bSees = idsOf((await b.ok("pattern_recall_context", {})).memories);
        expect(bSees).toContain(team.id);
        for (const id of hidden) expect(bSees).not.toContain(id);
      });
      const bSearch = await b.ok("pattern_search", { query: "alpha" });
      const bFound = (bSearch.results as Array<{ memory: MemoryOut }>).map((r) => r.memory.id);
      expect(bFound).toContain(team.id);
      for (const id of hidden) expect(bFound).not.toContain(id);
      for (const id of hidden)
        expect((await b.fails("pattern_forget", { memoryId: id, force: true })).code).toBe("not_found");
      expect((await b.fails("pattern_commit_insight", { memoryId: priv.id })).code).toBe("not_found");

      const cSees = idsOf((await c.ok("pattern_recall_context", {})).memories);
      for (const id of [...hidden, team.id]) expect(cSees).not.toContain(id);
      const cSearch = await c.ok("pattern_search", { query: "alpha" });
      expect((cSearch.results as unknown[]).length).toBe(0);
      expect((await c.fails("pattern_forget", { memoryId: team.id })).code).toBe("not_found");

      const cExport = await c.ok("pattern_export", { path: "c.json" });
      expect(cExport.byScope).not.toHaveProperty("private");
      expect(cExport.byScope).not.toHaveProperty("team");
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
  });

  it("a private memory planted under another agent's prefix is never listed for this agent", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice" });
    try {
      await a.ok("pattern_remember", { content: "mine", category: "longterm" });
      // Another agent's private memory, written straight into the bucket as that agent's library would.
      const other = randomId();
      const id = randomId();
      const now = new Date().toISOString();
      const kv = await a.fabric.kvm.open(buckets.memory(p));
      await kv.put(
        keys.memoryPrivate(other, "longterm", id),
        jsonCodec(memoryRecordSchema).encode({
          v: 1,
          id,
          scope: "private",
          category: "longterm",
          content: "someone else's",
          tags: [],
          priority: 1,
          relatedTo: [],
          author: { projectId: p, agentId: other, userId: other },
          createdAt: now,
          updatedAt: now,
        }),
      );
      const seen = (await a.ok("pattern_recall_context", { scopes: ["private", "team"] }))
        .memories as MemoryOut[];
      expect(seen.map((m) => m.content)).toEqual(["mine"]);
      expect((await a.fails("pattern_forget", { memoryId: id })).code).toBe("not_found");
    } finally {
      await a.close();
    }
  });

  it("a record whose body disagrees with its key is skipped: never shown, never found by id", async () => {
    const p = uniqueProjectId();
    const victim = await openAgent(nats.url, { projectId: p, agentName: "victim", userId: randomId() });
    try {
      // A genuine memory creates the bucket (no view is loaded yet).
      const genuine = memoryOf(
        await victim.ok("pattern_remember", { content: "genuine", category: "longterm" }),
      );
      const kv = await victim.fabric.kvm.open(buckets.memory(p));
      const codec = jsonCodec(memoryRecordSchema);
      const now = new Date().toISOString();
      const forged = (id: string, scope: "personal" | "private", category: "core" | "longterm") =>
        codec.encode({
          v: 1,
          id,
          scope,
          category,
          content: `forged ${scope} ${category}`,
          tags: [],
          priority: 1,
          relatedTo: [],
          author: { projectId: p, agentId: victim.config.agentId, userId: victim.config.userId },
          createdAt: now,
          updatedAt: now,
        });
      // A raw team key whose body claims to be the victim's core memory.
      const asCore = randomId();
      await kv.put(keys.memoryTeam("learnings", asCore), forged(asCore, "personal", "core"));
      // The victim's own private key, holding a record with another id.
      const otherId = randomId();
      await kv.put(
        keys.memoryPrivate(victim.config.agentId, "longterm", randomId()),
        forged(otherId, "private", "longterm"),
      );
      // A private key of the victim whose body names another agent as author.
      const stranger = randomId();
      const notMine = randomId();
      const body = JSON.parse(new TextDecoder().decode(forged(notMine, "private", "longterm")));
      body.author.agentId = stranger;
      await kv.put(
        keys.memoryPrivate(victim.config.agentId, "longterm", notMine),
        new TextEncoder().encode(JSON.stringify(body)),
      );

      const ctx = await victim.ok("pattern_recall_context", {});
      expect(idsOf(ctx.memories)).toEqual([genuine.id]);
      expect(ctx.summary).not.toContain("forged");
      expect(ctx.summary).not.toContain("## Core");
      const search = await victim.ok("pattern_search", { query: "forged" });
      expect(search.results).toEqual([]);
      for (const id of [asCore, otherId, notMine]) {
        expect((await victim.fails("pattern_forget", { memoryId: id, force: true })).code).toBe("not_found");
      }
      const health = await victim.ok("pattern_health", {});
      expect(health.status).toBe("degraded");
      const skipped = (health.views as Array<{ invalidSkipped: number }>).reduce(
        (n, v) => n + v.invalidSkipped,
        0,
      );
      expect(skipped).toBe(3);
    } finally {
      await victim.close();
    }
  });

  it("personal memories are recalled by the same user in another project", async () => {
    const user = randomId();
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), userId: user });
    const other = await openAgent(nats.url, { projectId: uniqueProjectId(), userId: user });
    const stranger = await openAgent(nats.url, { projectId: uniqueProjectId(), userId: randomId() });
    try {
      const core = memoryOf(await a.ok("pattern_core_memory", { content: "prefers tabs", priority: 1 }));
      const ctx = await other.ok("pattern_recall_context", { scopes: ["personal"] });
      expect(idsOf(ctx.memories)).toEqual([core.id]);
      expect(ctx.summary).toContain("prefers tabs");
      expect(idsOf((await stranger.ok("pattern_recall_context", { scopes: ["personal"] })).memories)).toEqual(
        [],
      );
      // Same user, other project: may forget it (with force), since personal memories are the user's.
      await other.ok("pattern_forget", { memoryId: core.id, force: true });
      await eventually(async () => {
        expect(idsOf((await a.ok("pattern_recall_context", { scopes: ["personal"] })).memories)).toEqual([]);
      });
    } finally {
      await a.close();
      await other.close();
      await stranger.close();
    }
  });

  it("changes by other agents reach a reader that already loaded its context", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice" });
    const b = await openAgent(nats.url, { projectId: p, agentName: "bob", dir: a.dir });
    try {
      expect((await b.ok("pattern_recall_context", { scopes: ["team"] })).memories).toEqual([]);
      const t = memoryOf(
        await a.ok("pattern_remember", { content: "decided: one bucket per scope", category: "decisions" }),
      );
      await eventually(async () => {
        expect(idsOf((await b.ok("pattern_recall_context", { scopes: ["team"] })).memories)).toEqual([t.id]);
      });
      await a.ok("pattern_forget", { memoryId: t.id });
      await eventually(async () => {
        expect((await b.ok("pattern_recall_context", { scopes: ["team"] })).memories).toEqual([]);
      });
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("expiry", () => {
  it("an ephemeral memory disappears after the bucket TTL without any cleanup call", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, pattern: { ephemeralTtlMs: 1_500 } });
    try {
      const recent = memoryOf(await a.ok("pattern_remember", { content: "short-lived" }));
      const task = memoryOf(await a.ok("pattern_remember_task", { content: "short-lived task" }));
      const kept = memoryOf(await a.ok("pattern_remember", { content: "kept", category: "longterm" }));
      expect(Date.parse(recent.expiresAt ?? "") - Date.now()).toBeLessThanOrEqual(1_500);
      expect(idsOf((await a.ok("pattern_recall_context", { scopes: ["private"] })).memories).sort()).toEqual(
        [recent.id, task.id, kept.id].sort(),
      );
      const health = await a.ok("pattern_health", {});
      expect(
        (health.buckets as Array<{ role: string; ttlMs?: number }>).find((x) => x.role === "ephemeral")
          ?.ttlMs,
      ).toBe(1_500);

      // NATS itself removes the keys: a raw read of the bucket finds nothing.
      const kv = await a.fabric.kvm.open(buckets.memoryEphemeral(p));
      await eventually(
        async () => {
          expect(await kv.get(keys.memoryPrivate(a.config.agentId, "recent", recent.id))).toBeNull();
          expect(await kv.get(keys.memoryPrivate(a.config.agentId, "tasks", task.id))).toBeNull();
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      expect(idsOf((await a.ok("pattern_recall_context", { scopes: ["private"] })).memories)).toEqual([
        kept.id,
      ]);
      expect((await a.fails("pattern_commit_insight", { memoryId: recent.id })).code).toBe("not_found");
    } finally {
      await a.close();
    }
  });
});
