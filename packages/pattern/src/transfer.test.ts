import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomId } from "@loominal/protocol";
import { NatsServer, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MemoryOut, openAgent } from "./pattern.test-helper.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

describe("pattern_export path safety", () => {
  it("never writes into a dot-directory such as .git/ or .claude/, but does into .loominal/", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      await a.ok("pattern_remember", { content: "stays out of tool configuration", category: "longterm" });
      for (const dir of [".git/hooks", ".claude", "sub/.vscode"]) {
        mkdirSync(join(a.dir, dir), { recursive: true });
        const refused = await a.fails("pattern_export", { path: `${dir}/memories.json` });
        expect(refused.code).toBe("invalid_input");
        expect(refused.message).toContain("dot-directory");
        expect(existsSync(join(a.dir, dir, "memories.json"))).toBe(false);
      }
      mkdirSync(join(a.dir, ".loominal"), { recursive: true });
      await a.ok("pattern_export", { path: ".loominal/memories.json" });
      expect(existsSync(join(a.dir, ".loominal", "memories.json"))).toBe(true);
    } finally {
      await a.close();
    }
  });

  it("refuses a dangling symbolic link as the file and never writes through it", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    const outside = tempDir("pattern-outside-");
    try {
      await a.ok("pattern_remember", { content: "must not leave the project", category: "longterm" });
      const target = join(outside.path, "planted.json");
      symlinkSync(target, join(a.dir, "out.json"));
      const refused = await a.fails("pattern_export", { path: "out.json" });
      expect(refused.code).toBe("forbidden");
      expect(refused.message).toContain("symbolic link");
      expect((await a.fails("pattern_export", { path: "out.json", overwrite: true })).code).toBe("forbidden");
      expect(existsSync(target)).toBe(false);
    } finally {
      await a.close();
      outside.cleanup();
    }
  });

  it("refuses to overwrite a symbolic link, even one that points inside the project", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      await a.ok("pattern_export", { path: "real.json" });
      const before = readFileSync(join(a.dir, "real.json"), "utf8");
      symlinkSync(join(a.dir, "real.json"), join(a.dir, "alias.json"));
      await a.ok("pattern_remember", { content: "changes the export", category: "longterm" });
      const refused = await a.fails("pattern_export", { path: "alias.json", overwrite: true });
      expect(refused.code).toBe("forbidden");
      expect(readFileSync(join(a.dir, "real.json"), "utf8")).toBe(before);
    } finally {
      await a.close();
    }
  });

  it("answers invalid_input, not an internal error, for a symlinked directory whose target is gone", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    const outside = tempDir("pattern-outside-");
    try {
      const missing = join(outside.path, "missing-dir");
      symlinkSync(missing, join(a.dir, "gone"));
      const r = await a.fails("pattern_export", { path: "gone/x.json" });
      expect(r.code).toBe("invalid_input");
      expect(r.message).toContain("gone");
      expect(r.message).toContain("does not exist");
      expect(existsSync(missing)).toBe(false);
    } finally {
      await a.close();
      outside.cleanup();
    }
  });

  it("follows a symlinked directory that stays inside the project", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      mkdirSync(join(a.dir, "real-dir"));
      symlinkSync(join(a.dir, "real-dir"), join(a.dir, "via-link"));
      const r = await a.ok("pattern_export", { path: "via-link/sub/x.json" });
      expect(r.path).toBe("via-link/sub/x.json");
      expect(existsSync(join(a.dir, "real-dir/sub/x.json"))).toBe(true);
    } finally {
      await a.close();
    }
  });

  it("accepts file names that merely begin with two dots", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const r = await a.ok("pattern_export", { path: "..notes.json" });
      expect(r.path).toBe("..notes.json");
      expect(existsSync(join(a.dir, "..notes.json"))).toBe(true);
      expect((await a.ok("pattern_import", { path: "..notes.json" })).imported).toBe(0);
      expect((await a.fails("pattern_export", { path: "sub/../../x.json" })).code).toBe("forbidden");
    } finally {
      await a.close();
    }
  });

  it("never writes the project's configuration files and overwrites only earlier exports", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      for (const path of [
        ".mcp.json",
        ".loominal.json",
        "package.json",
        "PACKAGE.JSON",
        "pkg/package.json",
      ]) {
        const r = await a.fails("pattern_export", { path });
        expect(r.code, path).toBe("invalid_input");
        expect(existsSync(join(a.dir, path)), path).toBe(false);
      }
      const tsconfig = `${JSON.stringify({ compilerOptions: { strict: true } })}\n`;
      writeFileSync(join(a.dir, "tsconfig.json"), tsconfig);
      const overwrite = await a.fails("pattern_export", { path: "tsconfig.json", overwrite: true });
      expect(overwrite.code).toBe("invalid_input");
      expect(overwrite.message).toContain("not a Pattern export");
      expect(readFileSync(join(a.dir, "tsconfig.json"), "utf8")).toBe(tsconfig);

      // An earlier export may be replaced, and the default directory .loominal/ is allowed.
      await a.ok("pattern_export", { path: ".loominal/backup.json" });
      await a.ok("pattern_remember", { content: "second", category: "longterm" });
      const again = await a.ok("pattern_export", { path: ".loominal/backup.json", overwrite: true });
      expect(again.count).toBe(1);
      const file = JSON.parse(readFileSync(join(a.dir, ".loominal/backup.json"), "utf8"));
      expect(file.memories).toHaveLength(1);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_export filters", () => {
  it("rejects an invalid scope/category pair with the valid pairs instead of writing an empty file", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      await a.ok("pattern_remember_learning", { content: "a team learning" });
      const r = await a.fails("pattern_export", { scope: "team", category: "core", path: "team-core.json" });
      expect(r.code).toBe("invalid_input");
      expect(r.message).toContain("private: recent, tasks, longterm");
      expect(r.message).toContain("team: learnings, decisions, architecture");
      expect(existsSync(join(a.dir, "team-core.json"))).toBe(false);
      // A category alone selects it in every scope that has it.
      const learnings = await a.ok("pattern_export", { category: "learnings", path: "learnings.json" });
      expect(learnings.count).toBe(1);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_import normalisation", () => {
  it("lower-cases and trims tags and refuses whitespace-only content, as pattern_remember does", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      const now = new Date().toISOString();
      const author = { projectId: "elsewhere", agentId: randomId(), userId: randomId() };
      const record = (content: string, tags: string[]) => ({
        v: 1,
        id: randomId(),
        scope: "private",
        category: "longterm",
        content,
        tags,
        priority: 2,
        relatedTo: [],
        author,
        createdAt: now,
        updatedAt: now,
      });
      const good = record("imported with messy tags", ["  MixedCase ", "mixedcase", "Other"]);
      const blank = record("   \n\t ", []);
      const emptyTag = record("has an empty tag", ["   "]);
      writeFileSync(
        join(a.dir, "messy.json"),
        JSON.stringify({
          format: "loominal-pattern-export",
          version: 1,
          exportedAt: now,
          memories: [good, blank, emptyTag],
        }),
      );
      const r = await a.ok("pattern_import", { path: "messy.json" });
      expect(r.imported).toBe(1);
      const skipped = r.skipped as Array<{ fromId: string; reason: string }>;
      expect(skipped.map((s) => s.fromId).sort()).toEqual([blank.id, emptyTag.id].sort());
      expect(skipped.find((s) => s.fromId === blank.id)?.reason).toContain("content");
      expect(skipped.find((s) => s.fromId === emptyTag.id)?.reason).toContain("tag");
      const ctx = await a.ok("pattern_recall_context", { scopes: ["private"] });
      const mems = ctx.memories as MemoryOut[];
      expect(mems).toHaveLength(1);
      expect(mems[0]?.tags).toEqual(["mixedcase", "other"]);
      expect((await a.ok("pattern_recall_context", { tags: ["mixedcase"] })).matched).toBe(1);
    } finally {
      await a.close();
    }
  });
});

describe("pattern_import of a file with repeated ids", () => {
  it("imports the first record of an id, and names each later one as skipped instead of losing it silently", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId() });
    try {
      await a.ok("pattern_remember", { content: "first of the id", category: "longterm" });
      await a.ok("pattern_export", { scope: "private", path: "one.json" });
      const file = JSON.parse(readFileSync(join(a.dir, "one.json"), "utf8"));
      const [first] = file.memories;
      const twin = { ...first, content: "second with the same id", category: "tasks" };
      const third = { ...first, content: "third with the same id" };
      writeFileSync(join(a.dir, "twins.json"), JSON.stringify({ ...file, memories: [first, twin, third] }));

      const b = await openAgent(nats.url, { projectId: uniqueProjectId() });
      try {
        mkdirSync(join(b.dir, "in"));
        writeFileSync(join(b.dir, "in/twins.json"), readFileSync(join(a.dir, "twins.json")));
        const imp = await b.ok("pattern_import", { path: "in/twins.json" });
        expect(imp.imported).toBe(1);
        const skipped = imp.skipped as Array<{ fromId: string; reason: string }>;
        expect(skipped).toHaveLength(2);
        for (const s of skipped) {
          expect(s.fromId).toBe(first.id);
          expect(s.reason).toContain("same id");
        }
        const ctx = await b.ok("pattern_recall_context", { scopes: ["private"] });
        const contents = (ctx.memories as MemoryOut[]).map((m) => m.content);
        expect(contents).toEqual(["first of the id"]);
      } finally {
        await b.close();
      }
    } finally {
      await a.close();
    }
  });
});
