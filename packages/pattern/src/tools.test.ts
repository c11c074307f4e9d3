import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { field, idsOf, type MemoryOut, memoryOf, openAgent, USER_A, USER_B } from "./pattern.test-helper.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

const ALL_TOOLS = [
  "pattern_remember",
  "pattern_remember_task",
  "pattern_remember_learning",
  "pattern_core_memory",
  "pattern_commit_insight",
  "pattern_share_learning",
  "pattern_forget",
  "pattern_recall_context",
  "pattern_search",
  "pattern_remember_bulk",
  "pattern_forget_bulk",
  "pattern_export",
  "pattern_import",
  "pattern_cleanup",
  "pattern_health",
];

describe("tool list", () => {
  it("publishes every tool with an input and an output schema", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const tools = await a.client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([...ALL_TOOLS].sort());
      for (const t of tools) {
        expect(t.inputSchema, t.name).toMatchObject({ type: "object" });
        expect(t.outputSchema, t.name).toMatchObject({ type: "object" });
        const { properties = {} } = t.inputSchema as {
          properties?: Record<string, { description?: string }>;
        };
        for (const [name, p] of Object.entries(properties))
          expect(p.description, `${t.name}.${name} has a description`).toBeTruthy();
      }
      const remember = tools.find((t) => t.name === "pattern_remember");
      const props = ((remember ?? { inputSchema: {} }).inputSchema as { properties: Record<string, unknown> })
        .properties;
      expect(Object.keys(props).sort()).toEqual([
        "category",
        "content",
        "idempotencyKey",
        "priority",
        "relatedTo",
        "scope",
        "tags",
      ]);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_remember and its shortcuts", () => {
  it("stores private/recent by default with an expiry, and infers the scope from the category", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const plain = memoryOf(await a.ok("pattern_remember", { content: "the build needs node 20" }));
      expect(plain).toMatchObject({ scope: "private", category: "recent", priority: 2, tags: [] });
      expect(plain.id).toMatch(/^[0-9a-f]{32}$/);
      expect(plain.author.agentId).toBe(a.config.agentId);
      expect(Date.parse(plain.expiresAt ?? "")).toBeGreaterThan(Date.now());

      const decision = memoryOf(
        await a.ok("pattern_remember", {
          content: "we use pnpm",
          category: "decisions",
          tags: ["Tooling"],
          priority: 1,
        }),
      );
      expect(decision).toMatchObject({
        scope: "team",
        category: "decisions",
        tags: ["tooling"],
        priority: 1,
      });
      expect(decision.expiresAt).toBeUndefined();

      const longterm = memoryOf(
        await a.ok("pattern_remember", { content: "x", scope: "private", category: "longterm" }),
      );
      expect(longterm.expiresAt).toBeUndefined();
      const publicOne = memoryOf(await a.ok("pattern_remember", { content: "y", scope: "public" }));
      expect(publicOne).toMatchObject({ scope: "public", category: "learnings" });
    } finally {
      await a.close();
    }
  });

  it("rejects an invalid scope/category pair with the valid pairs, and bad fields by name", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const pair = await a.fails("pattern_remember", { content: "x", scope: "team", category: "recent" });
      expect(pair.code).toBe("invalid_input");
      expect(pair.message).toContain("private: recent, tasks, longterm");
      expect(pair.message).toContain("team: learnings, decisions, architecture");

      const empty = await a.fails("pattern_remember", { content: "   " });
      expect(empty.code).toBe("invalid_input");
      expect(empty.message).toContain("content");

      const prio = await a.fails("pattern_remember", { content: "x", priority: 7 });
      expect(prio.message).toContain("priority");
      const scope = await a.fails("pattern_remember", { content: "x", scope: "galaxy" });
      expect(scope.message).toContain("scope");
      const related = await a.fails("pattern_remember", { content: "x", relatedTo: ["../x"] });
      expect(related.message).toContain("relatedTo");
      const huge = await a.fails("pattern_remember", { content: "x".repeat(16_385) });
      expect(huge.message).toContain("16384");
    } finally {
      await a.close();
    }
  });

  it("remember_task, remember_learning and core_memory write their fixed categories", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), userId: USER_A });
    try {
      expect(memoryOf(await a.ok("pattern_remember_task", { content: "finish the parser" }))).toMatchObject({
        scope: "private",
        category: "tasks",
      });
      expect(memoryOf(await a.ok("pattern_remember_learning", { content: "retry on 10071" }))).toMatchObject({
        scope: "team",
        category: "learnings",
      });
      expect(
        memoryOf(
          await a.ok("pattern_remember_learning", { content: "kv ttl is per bucket", scope: "public" }),
        ),
      ).toMatchObject({ scope: "public", category: "learnings" });
      const core = memoryOf(await a.ok("pattern_core_memory", { content: "I prefer small commits" }));
      expect(core).toMatchObject({ scope: "personal", category: "core" });
      expect(core.author.userId).toBe(USER_A);

      expect((await a.fails("pattern_remember_task", { content: "" })).code).toBe("invalid_input");
      expect((await a.fails("pattern_remember_learning", { content: "x", scope: "private" })).code).toBe(
        "invalid_input",
      );
      expect((await a.fails("pattern_core_memory", { content: "x", scope: "team" })).code).toBe(
        "invalid_input",
      );
    } finally {
      await a.close();
    }
  });

  it("refuses a core memory beyond maxCoreMemories", async () => {
    const user = `${"c".repeat(31)}1`;
    const a = await openAgent(nats.url, {
      projectId: uniqueProjectId(),
      userId: user,
      pattern: { maxCoreMemories: 3 },
    });
    try {
      for (let i = 0; i < 3; i++) await a.ok("pattern_core_memory", { content: `core ${i}` });
      const full = await a.fails("pattern_core_memory", { content: "one too many" });
      expect(full.code).toBe("conflict");
      expect(full.message).toContain("limit 3");
    } finally {
      await a.close();
    }
  });

  it("flags content that looks like a secret and stays quiet otherwise", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const r = await a.client.call("pattern_remember", {
        content: "deploy key AKIAIOSFODNN7EXAMPLE for staging",
      });
      expect(r.isError).toBe(false);
      expect(field<string[]>(r, "warnings").join(" ")).toContain("AWS access key id");
      expect(r.text).toContain("WARNING");
      const pem = await a.ok("pattern_remember", {
        content:
          "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
      });
      expect((pem.warnings as string[])[0]).toContain("private key");
      const clean = await a.ok("pattern_remember", { content: "the password rules are in docs/security.md" });
      expect(clean.warnings).toEqual([]);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_remember with an idempotency key", () => {
  it("stores a retried remember once and says it is a duplicate", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), agentName: "alice" });
    try {
      const args = { content: "retry me", category: "longterm", idempotencyKey: "note-1" };
      const first = await a.ok("pattern_remember", args);
      const again = await a.ok("pattern_remember", args);
      expect(memoryOf(again).id).toBe(memoryOf(first).id);
      expect(first.duplicate).toBeUndefined();
      expect(again.duplicate).toBe(true);
      const other = await a.ok("pattern_remember", { ...args, idempotencyKey: "note-2" });
      expect(memoryOf(other).id).not.toBe(memoryOf(first).id);
      const found = await a.ok("pattern_search", { query: "retry" });
      expect((found.results as unknown[]).length).toBe(2);
      expect((await a.fails("pattern_remember", { content: "x", idempotencyKey: "no spaces" })).code).toBe(
        "invalid_input",
      );
    } finally {
      await a.close();
    }
  });
});

describe("pattern_commit_insight", () => {
  it("moves a recent memory to longterm with the same id, optionally with new content", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const recent = memoryOf(await a.ok("pattern_remember", { content: "draft idea" }));
      const committed = memoryOf(
        await a.ok("pattern_commit_insight", { memoryId: recent.id, newContent: "distilled idea" }),
      );
      expect(committed).toMatchObject({
        id: recent.id,
        scope: "private",
        category: "longterm",
        content: "distilled idea",
      });
      expect(committed.expiresAt).toBeUndefined();
      expect(committed.origin).toMatchObject({ kind: "committed", memoryId: recent.id });
      const ctx = await a.ok("pattern_recall_context", { scopes: ["private"] });
      const mems = ctx.memories as MemoryOut[];
      expect(mems.filter((m) => m.id === recent.id).map((m) => m.category)).toEqual(["longterm"]);

      const task = memoryOf(await a.ok("pattern_remember_task", { content: "keep me" }));
      expect(memoryOf(await a.ok("pattern_commit_insight", { memoryId: task.id })).content).toBe("keep me");
    } finally {
      await a.close();
    }
  });

  it("refuses memories that are not private recent/tasks, unknown ids and malformed ids", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const team = memoryOf(await a.ok("pattern_remember_learning", { content: "team thing" }));
      const wrong = await a.fails("pattern_commit_insight", { memoryId: team.id });
      expect(wrong.code).toBe("invalid_transition");
      expect(wrong.message).toContain("team/learnings");
      expect((await a.fails("pattern_commit_insight", { memoryId: "f".repeat(32) })).code).toBe("not_found");
      expect((await a.fails("pattern_commit_insight", { memoryId: "a.>" })).code).toBe("invalid_input");
      const recent = memoryOf(await a.ok("pattern_remember", { content: "x" }));
      expect((await a.fails("pattern_commit_insight", { memoryId: recent.id, newContent: "" })).code).toBe(
        "invalid_input",
      );
    } finally {
      await a.close();
    }
  });
});

describe("pattern_share_learning", () => {
  it("moves a private memory to the team, or shares a copy with keepOriginal", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice" });
    const b = await openAgent(nats.url, { projectId: p, agentName: "bob", dir: a.dir });
    try {
      const mine = memoryOf(
        await a.ok("pattern_remember", { content: "flaky test is a race", category: "longterm" }),
      );
      const shared = await a.ok("pattern_share_learning", { memoryId: mine.id });
      expect(memoryOf(shared)).toMatchObject({ id: mine.id, scope: "team", category: "learnings" });
      expect(shared.originalKept).toBe(false);
      expect((await a.fails("pattern_commit_insight", { memoryId: mine.id })).code).toBe(
        "invalid_transition",
      );

      const other = memoryOf(await a.ok("pattern_remember", { content: "use fake timers" }));
      const copy = await a.ok("pattern_share_learning", {
        memoryId: other.id,
        category: "decisions",
        keepOriginal: true,
      });
      const copied = memoryOf(copy);
      expect(copied.id).not.toBe(other.id);
      expect(copied).toMatchObject({
        scope: "team",
        category: "decisions",
        origin: { kind: "shared", memoryId: other.id },
      });
      const own = await a.ok("pattern_recall_context", { scopes: ["private"] });
      expect(idsOf(own.memories)).toContain(other.id);

      const bobSees = async () =>
        idsOf((await b.ok("pattern_recall_context", { scopes: ["team"] })).memories);
      await expect.poll(bobSees, { timeout: 5_000 }).toEqual(expect.arrayContaining([mine.id, copied.id]));

      expect((await a.fails("pattern_share_learning", { memoryId: mine.id })).code).toBe(
        "invalid_transition",
      );
      expect((await a.fails("pattern_share_learning", { memoryId: other.id, category: "core" })).code).toBe(
        "invalid_input",
      );
      // Bob cannot share Alice's private memory: he cannot even see it.
      expect((await b.fails("pattern_share_learning", { memoryId: other.id })).code).toBe("not_found");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("pattern_forget", () => {
  it("forgets own memories, needs force for core, and refuses another agent's team memory", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice", userId: "d".repeat(32) });
    const b = await openAgent(nats.url, {
      projectId: p,
      agentName: "bob",
      dir: a.dir,
      userId: "e".repeat(32),
    });
    try {
      const recent = memoryOf(await a.ok("pattern_remember", { content: "temp" }));
      const forgotten = await a.ok("pattern_forget", { memoryId: recent.id });
      expect(forgotten).toEqual({ memoryId: recent.id, removed: [{ scope: "private", category: "recent" }] });
      expect((await a.fails("pattern_forget", { memoryId: recent.id })).code).toBe("not_found");

      const core = memoryOf(await a.ok("pattern_core_memory", { content: "who I am" }));
      const needForce = await a.fails("pattern_forget", { memoryId: core.id });
      expect(needForce.code).toBe("forbidden");
      expect(needForce.message).toContain("force: true");
      await a.ok("pattern_forget", { memoryId: core.id, force: true });

      const team = memoryOf(await a.ok("pattern_remember_learning", { content: "shared fact" }));
      const notYours = await b.fails("pattern_forget", { memoryId: team.id, force: true });
      expect(notYours.code).toBe("forbidden");
      expect(notYours.message).toContain("only its author");
      const pub = memoryOf(
        await a.ok("pattern_remember_learning", { content: "public fact", scope: "public" }),
      );
      expect((await b.fails("pattern_forget", { memoryId: pub.id })).code).toBe("forbidden");
      await a.ok("pattern_forget", { memoryId: team.id });
      await a.ok("pattern_forget", { memoryId: pub.id });
      expect((await a.fails("pattern_forget", { memoryId: "nope" })).code).toBe("invalid_input");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("pattern_recall_context", () => {
  it("orders core, longterm, team decisions/architecture/learnings, recent, tasks, public", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), userId: "1".repeat(32) });
    try {
      const order = [
        ["public", "learnings"],
        ["private", "tasks"],
        ["private", "recent"],
        ["team", "learnings"],
        ["team", "architecture"],
        ["team", "decisions"],
        ["private", "longterm"],
        ["personal", "core"],
      ] as const;
      for (const [scope, category] of order)
        await a.ok("pattern_remember", { content: `${scope} ${category}`, scope, category });
      const low = memoryOf(
        await a.ok("pattern_remember", {
          content: "low priority decision",
          category: "decisions",
          priority: 3,
        }),
      );
      const ctx = await a.ok("pattern_recall_context", {});
      const got = (ctx.memories as MemoryOut[]).map((m) => `${m.scope} ${m.category}`);
      const publicFromOthers = got.filter((g) => g.startsWith("public") && g !== "public learnings");
      expect(publicFromOthers).toEqual([]);
      expect(got.filter((g) => g !== "public learnings").slice(0, 8)).toEqual([
        "personal core",
        "private longterm",
        "team decisions",
        "team decisions",
        "team architecture",
        "team learnings",
        "private recent",
        "private tasks",
      ]);
      // Within a category, priority 1–3 in order.
      expect((ctx.memories as MemoryOut[])[3]?.id).toBe(low.id);
      expect(ctx.summary).toContain("## Core (personal)");
      expect(ctx.counts).toMatchObject({ "personal/core": 1, "team/decisions": 2 });
    } finally {
      await a.close();
    }
  });

  it("keeps the summary within maxBytes and filters by category, tag, search, since and limit", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const before = new Date().toISOString();
      const items = Array.from({ length: 60 }, (_, i) => ({
        content: `note ${i} ${"é".repeat(40)} ${i % 2 === 0 ? "alpha" : "beta"}`,
        category: i % 3 === 0 ? "longterm" : "recent",
        tags: i % 5 === 0 ? ["five"] : [],
      }));
      await a.ok("pattern_remember_bulk", { memories: items });
      const small = await a.ok("pattern_recall_context", { scopes: ["private"], maxBytes: 1024 });
      expect(Buffer.byteLength(small.summary as string, "utf8")).toBeLessThanOrEqual(1024);
      expect(small.truncated).toBe(true);
      expect(small.matched).toBe(60);
      const shown = small.memories as MemoryOut[];
      expect(shown.length).toBeGreaterThan(0);
      for (const m of shown) expect(small.summary as string).toContain(m.id);

      const def = await a.ok("pattern_recall_context", { scopes: ["private"] });
      expect(Buffer.byteLength(def.summary as string, "utf8")).toBeLessThanOrEqual(4096);

      const lt = await a.ok("pattern_recall_context", {
        scopes: ["private"],
        categories: ["longterm"],
        maxBytes: 65_536,
      });
      expect((lt.memories as MemoryOut[]).every((m) => m.category === "longterm")).toBe(true);
      expect(lt.matched).toBe(20);
      const tagged = await a.ok("pattern_recall_context", {
        scopes: ["private"],
        tags: ["FIVE"],
        maxBytes: 65_536,
      });
      expect(tagged.matched).toBe(12);
      const searched = await a.ok("pattern_recall_context", {
        scopes: ["private"],
        search: "ALPHA note",
        maxBytes: 65_536,
      });
      expect(searched.matched).toBe(30);
      const limited = await a.ok("pattern_recall_context", {
        scopes: ["private"],
        limit: 5,
        maxBytes: 65_536,
      });
      expect((limited.memories as unknown[]).length).toBe(5);
      const future = await a.ok("pattern_recall_context", {
        scopes: ["private"],
        since: new Date(Date.now() + 60_000).toISOString(),
      });
      expect(future.matched).toBe(0);
      expect(future.summary).toContain("No memories match");
      expect((await a.ok("pattern_recall_context", { scopes: ["private"], since: before })).matched).toBe(60);

      expect((await a.fails("pattern_recall_context", { maxBytes: 10 })).message).toContain("maxBytes");
      expect((await a.fails("pattern_recall_context", { scopes: ["everyone"] })).code).toBe("invalid_input");
      expect((await a.fails("pattern_recall_context", { since: "yesterday" })).message).toContain("since");
    } finally {
      await a.close();
    }
  });
});

describe("pattern_recall_context output size", () => {
  it("bounds the structured memories by maxBytes too, cutting long content as the summary does", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const long = memoryOf(
        await a.ok("pattern_remember", {
          content: `long ${"word ".repeat(2_000)}`,
          category: "longterm",
          priority: 1,
        }),
      );
      const short = memoryOf(await a.ok("pattern_remember", { content: "short one", category: "longterm" }));
      // Whitespace collapses in the summary line, so these look small there but are large as stored.
      await a.ok("pattern_remember_bulk", {
        memories: Array.from({ length: 30 }, (_, i) => ({
          content: `spaced ${i}${" ".repeat(3_000)}end`,
          category: "recent",
        })),
      });
      const maxBytes = 2_048;
      const ctx = await a.ok("pattern_recall_context", { scopes: ["private"], maxBytes });
      const mems = ctx.memories as Array<MemoryOut & { contentTruncated?: boolean }>;
      const contentBytes = mems.reduce((n, m) => n + Buffer.byteLength(m.content, "utf8"), 0);
      expect(contentBytes).toBeLessThanOrEqual(maxBytes);
      expect(ctx.truncated).toBe(true);
      expect(ctx.returned).toBe(mems.length);
      const first = mems.find((m) => m.id === long.id);
      expect(first?.contentTruncated).toBe(true);
      expect(first?.content.length).toBeLessThan(1_000);
      expect(long.content.startsWith(first?.content ?? "x")).toBe(true);
      expect(mems.find((m) => m.id === short.id)).toMatchObject({ content: "short one" });
      expect(mems.find((m) => m.id === short.id)?.contentTruncated).toBeUndefined();
      for (const m of mems) expect(ctx.summary as string).toContain(m.id);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_search", () => {
  it("ranks memories with more of the query words first and respects scopes", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const best = memoryOf(
        await a.ok("pattern_remember", {
          content: "nats kv watch delivers last values per subject",
          category: "longterm",
        }),
      );
      const some = memoryOf(await a.ok("pattern_remember", { content: "a kv bucket", category: "longterm" }));
      await a.ok("pattern_remember", { content: "unrelated gardening note", category: "longterm" });
      const team = memoryOf(
        await a.ok("pattern_remember_learning", { content: "kv watch in the team", tags: ["nats"] }),
      );
      const r = await a.ok("pattern_search", { query: "NATS kv watch", scopes: ["private", "team"] });
      const ids = (r.results as Array<{ memory: MemoryOut; score: number }>).map((x) => x.memory.id);
      expect(ids[0]).toBe(best.id);
      expect(ids).toEqual(expect.arrayContaining([some.id, team.id]));
      expect(r.matched).toBe(3);
      const scores = (r.results as Array<{ score: number }>).map((x) => x.score);
      expect([...scores].sort((x, y) => y - x)).toEqual(scores);
      const teamOnly = await a.ok("pattern_search", { query: "kv", scopes: ["team"] });
      expect((teamOnly.results as Array<{ memory: MemoryOut }>).map((x) => x.memory.id)).toEqual([team.id]);
      expect(
        (await a.ok("pattern_search", { query: "kv", scopes: ["private"], limit: 1 })).results,
      ).toHaveLength(1);
      expect((await a.ok("pattern_search", { query: "zebra", scopes: ["private", "team"] })).results).toEqual(
        [],
      );
      expect((await a.fails("pattern_search", { query: "  " })).code).toBe("invalid_input");
      expect((await a.fails("pattern_search", { query: "kv", limit: 0 })).code).toBe("invalid_input");
    } finally {
      await a.close();
    }
  });
});

describe("bulk tools", () => {
  it("remember_bulk and forget_bulk report each item on its own", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice" });
    const b = await openAgent(nats.url, { projectId: p, agentName: "bob", dir: a.dir });
    try {
      const r = await a.ok("pattern_remember_bulk", {
        memories: [
          { content: "one" },
          { content: "two", scope: "team", category: "tasks" },
          { content: "three", category: "architecture" },
        ],
      });
      expect(r.stored).toBe(2);
      expect(r.failed).toBe(1);
      const results = r.results as Array<{
        index: number;
        ok: boolean;
        memoryId?: string;
        error?: { code: string };
      }>;
      expect(results.map((x) => x.ok)).toEqual([true, false, true]);
      expect(results[1]?.error?.code).toBe("invalid_input");
      expect((await a.fails("pattern_remember_bulk", { memories: [] })).code).toBe("invalid_input");
      // An invalid item (empty content, a bad tag, not even an object) fails only itself.
      const mixed = await a.ok("pattern_remember_bulk", {
        memories: [{ content: "" }, { content: "kept", tags: ["ok"] }, { content: "x", priority: 9 }, 7],
      });
      expect(mixed.stored).toBe(1);
      const mixedResults = mixed.results as Array<{ ok: boolean; error?: { code: string; message: string } }>;
      expect(mixedResults.map((x) => x.ok)).toEqual([false, true, false, false]);
      expect(mixedResults[0]?.error?.code).toBe("invalid_input");
      expect(mixedResults[0]?.error?.message).toContain("content");
      expect(mixedResults[2]?.error?.message).toContain("priority");
      expect(mixedResults[3]?.error?.code).toBe("invalid_input");
      expect(
        (await a.fails("pattern_remember_bulk", { memories: Array(1_001).fill({ content: "x" }) })).message,
      ).toContain("1000");

      const teamId = results[2]?.memoryId as string;
      const bobs = memoryOf(await b.ok("pattern_remember", { content: "bob's" }));
      const f = await b.ok("pattern_forget_bulk", { memoryIds: [bobs.id, teamId, "0".repeat(32)] });
      expect(f.forgotten).toBe(1);
      const codes = (f.results as Array<{ ok: boolean; error?: { code: string } }>).map(
        (x) => x.error?.code ?? "ok",
      );
      expect(codes).toEqual(["ok", "forbidden", "not_found"]);
      expect(
        (await a.ok("pattern_forget_bulk", { memoryIds: [results[0]?.memoryId, teamId] })).forgotten,
      ).toBe(2);
      expect((await a.fails("pattern_forget_bulk", { memoryIds: ["x"] })).code).toBe("invalid_input");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("pattern_export and pattern_import", () => {
  it("exports inside the project and imports under the importer's identity, skipping duplicates", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), agentName: "alice", userId: USER_A });
    const b = await openAgent(nats.url, { projectId: uniqueProjectId(), agentName: "bob", userId: USER_B });
    try {
      const first = memoryOf(
        await a.ok("pattern_remember", { content: "exported longterm", category: "longterm" }),
      );
      await a.ok("pattern_remember", {
        content: "exported decision",
        category: "decisions",
        relatedTo: [first.id],
      });
      const ex = await a.ok("pattern_export", { scope: "private", path: "backup/private.json" });
      expect(ex).toMatchObject({ path: "backup/private.json", count: 1, byScope: { private: 1 } });
      const teamEx = await a.ok("pattern_export", { scope: "team", path: "backup/team.json" });
      expect(teamEx.count).toBe(1);
      const privateFile = JSON.parse(readFileSync(join(a.dir, "backup/private.json"), "utf8"));
      const teamFile = JSON.parse(readFileSync(join(a.dir, "backup/team.json"), "utf8"));
      expect(privateFile.format).toBe("loominal-pattern-export");
      expect(
        (await a.fails("pattern_export", { scope: "team", path: "backup/team.json" })).message,
      ).toContain("overwrite");
      await a.ok("pattern_export", { scope: "team", path: "backup/team.json", overwrite: true });
      const def = await a.ok("pattern_export", {});
      expect(def.path as string).toMatch(/^\.loominal\/pattern-export-.*\.json$/);

      // Bob (another project) imports a copy placed in his project.
      mkdirSync(join(b.dir, "in"));
      const merged = { ...privateFile, memories: [...privateFile.memories, ...teamFile.memories] };
      writeFileSync(join(b.dir, "in/all.json"), JSON.stringify(merged));
      const imp = await b.ok("pattern_import", { path: "in/all.json" });
      expect(imp.imported).toBe(2);
      const ctx = await b.ok("pattern_recall_context", { scopes: ["private", "team"] });
      const mems = ctx.memories as Array<MemoryOut & { relatedTo: string[] }>;
      expect(mems).toHaveLength(2);
      for (const m of mems) {
        expect(m.author.agentId).toBe(b.config.agentId);
        expect(m.author.projectId).toBe(b.config.projectId);
        expect(m.origin?.kind).toBe("imported");
      }
      const longterm = mems.find((m) => m.category === "longterm");
      expect(mems.find((m) => m.category === "decisions")?.relatedTo).toEqual([longterm?.id]);
      const again = await b.ok("pattern_import", { path: "in/all.json" });
      expect(again.imported).toBe(0);
      expect((again.skipped as unknown[]).length).toBe(2);
      // Imported team memories belong to Bob: he may forget them.
      await b.ok("pattern_forget", { memoryId: mems.find((m) => m.category === "decisions")?.id });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("refuses paths outside the project directory, symlinks out of it, and bad files", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    const outside = tempDir("pattern-outside-");
    try {
      expect((await a.fails("pattern_export", { path: "../escape.json" })).code).toBe("forbidden");
      expect((await a.fails("pattern_export", { path: join(outside.path, "x.json") })).code).toBe(
        "forbidden",
      );
      expect((await a.fails("pattern_export", { path: "notes.txt" })).code).toBe("invalid_input");
      symlinkSync(outside.path, join(a.dir, "link"));
      expect((await a.fails("pattern_export", { path: "link/x.json" })).code).toBe("forbidden");
      expect(existsSync(join(outside.path, "x.json"))).toBe(false);

      writeFileSync(join(outside.path, "secret.json"), "{}");
      expect((await a.fails("pattern_import", { path: join(outside.path, "secret.json") })).code).toBe(
        "forbidden",
      );
      expect((await a.fails("pattern_import", { path: "link/secret.json" })).code).toBe("forbidden");
      expect((await a.fails("pattern_import", { path: "missing.json" })).code).toBe("invalid_input");
      writeFileSync(join(a.dir, "bad.json"), "{not json");
      expect((await a.fails("pattern_import", { path: "bad.json" })).message).toContain("not valid JSON");
      writeFileSync(join(a.dir, "wrong.json"), JSON.stringify({ format: "other" }));
      expect((await a.fails("pattern_import", { path: "wrong.json" })).message).toContain(
        "not a Pattern export",
      );
    } finally {
      await a.close();
      outside.cleanup();
    }
  });
});

describe("pattern_cleanup", () => {
  it("forgets only the caller's own old private memories", async () => {
    const p = uniqueProjectId();
    const a = await openAgent(nats.url, { projectId: p, agentName: "alice" });
    const b = await openAgent(nats.url, { projectId: p, agentName: "bob", dir: a.dir });
    try {
      const mineRecent = memoryOf(await a.ok("pattern_remember", { content: "a recent" }));
      const mineLong = memoryOf(
        await a.ok("pattern_remember", { content: "a longterm", category: "longterm" }),
      );
      const team = memoryOf(await a.ok("pattern_remember_learning", { content: "team" }));
      const bobs = memoryOf(await b.ok("pattern_remember", { content: "b recent" }));

      const report = await a.ok("pattern_cleanup", {});
      expect(report).toMatchObject({ forgotten: 0, ephemeralRemaining: 1 });
      const dry = await a.ok("pattern_cleanup", { olderThanMs: 0, dryRun: true });
      expect(dry).toMatchObject({ forgotten: 1, memoryIds: [mineRecent.id], dryRun: true });
      const done = await a.ok("pattern_cleanup", { olderThanMs: 0 });
      expect(done).toMatchObject({ forgotten: 1, memoryIds: [mineRecent.id], ephemeralRemaining: 0 });

      const left = idsOf((await a.ok("pattern_recall_context", {})).memories);
      expect(left).toEqual(expect.arrayContaining([mineLong.id, team.id]));
      expect(left).not.toContain(mineRecent.id);
      expect(idsOf((await b.ok("pattern_recall_context", { scopes: ["private"] })).memories)).toEqual([
        bobs.id,
      ]);
      expect((await a.fails("pattern_cleanup", { categories: ["learnings"] })).code).toBe("invalid_input");
      expect((await a.fails("pattern_cleanup", { olderThanMs: -1 })).code).toBe("invalid_input");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("pattern_health", () => {
  it("reports connection, identity and buckets without credentials", async () => {
    const url = nats.url.replace("nats://", "nats://someone:hunter2-secret@");
    const a = await openAgent(url, { projectId: uniqueProjectId() });
    try {
      await a.ok("pattern_remember", { content: "x" });
      const r = await a.client.call("pattern_health", {});
      expect(r.isError).toBe(false);
      expect(r.structured).toMatchObject({
        status: "ok",
        nats: { state: "connected" },
        identity: { projectId: a.config.projectId, agentId: a.config.agentId },
      });
      const buckets = r.structured?.buckets as Array<{ role: string; exists: boolean; ttlMs?: number }>;
      expect(buckets.find((x) => x.role === "ephemeral")).toMatchObject({ exists: true, ttlMs: 86_400_000 });
      expect(JSON.stringify(r.structured)).not.toContain("hunter2");
      expect(r.text).not.toContain("hunter2");
      expect((await a.fails("pattern_health", { extra: 1 } as Record<string, unknown>)).code).toBe(
        "invalid_input",
      );
    } finally {
      await a.close();
    }
  });
});
