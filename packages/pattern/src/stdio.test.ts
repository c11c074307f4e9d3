import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Fabric, loadConfig } from "@loominal/fabric";
import {
  connectInMemory,
  freePort,
  NatsServer,
  runToExit,
  spawnStdio,
  tempDir,
  uniqueProjectId,
} from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPatternServer, PATTERN_CORE_TOOLS } from "./mcp/server.js";
import { field } from "./pattern.test-helper.js";
import { MemoryStore } from "./store.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

describe("loominal-pattern over stdio", () => {
  it("the built bin serves the tools to a spawned client as Claude Code would run it", async () => {
    const dir = tempDir("pattern-bin-");
    const projectId = uniqueProjectId();
    const client = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      env: {
        NATS_URL: nats.url,
        LOOMINAL_PROJECT_DIR: dir.path,
        LOOMINAL_PROJECT_ID: projectId,
        LOOMINAL_AGENT_NAME: "stdio-agent",
        LOOMINAL_LOG_LEVEL: "warn",
        LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES: "250",
      },
    });
    try {
      // The default profile: the core tools and pattern_more, which reaches the others.
      const tools = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual([...PATTERN_CORE_TOOLS, "pattern_more"]);
      const r = await client.call("pattern_remember", {
        content: "remembered over stdio",
        category: "longterm",
      });
      expect(r.isError).toBe(false);
      const id = field<{ id: string }>(r, "memory").id;
      const ctx = await client.call("pattern_recall_context", { scopes: ["private"] });
      expect(ctx.text).toContain("remembered over stdio");
      expect(field<Array<{ id: string }>>(ctx, "memories").map((m) => m.id)).toEqual([id]);
      const bad = await client.call("pattern_remember", { content: "x", scope: "team", category: "core" });
      expect(bad.isError).toBe(true);
      expect(bad.text).toMatch(/^invalid_input: /);
      // A tool outside the core profile answers through pattern_more, its errors too.
      const unknown = await client.call("pattern_more", {
        tool: "pattern_forget",
        arguments: { memoryId: "0".repeat(32) },
      });
      expect(unknown).toMatchObject({ isError: true, structured: undefined });
      expect(unknown.error?.code).toBe("not_found");
      const health = await client.call("pattern_more", { tool: "pattern_health" });
      expect(health.structured).toMatchObject({
        status: "ok",
        identity: { projectId },
        settings: { maxPublicMemories: 250 },
      });
      // The bin's identity is the one loadConfig derives for this directory and agent name.
      const expected = loadConfig({
        env: {
          LOOMINAL_PROJECT_DIR: dir.path,
          LOOMINAL_PROJECT_ID: projectId,
          LOOMINAL_AGENT_NAME: "stdio-agent",
        },
      });
      expect(field<{ agentId: string }>(health, "identity").agentId).toBe(expected.agentId);
    } finally {
      await client.close();
      dir.cleanup();
    }
  });
});

describe("two sessions in one directory", () => {
  it("two Pattern processes started in one directory are two agents that never see each other's private memories", async () => {
    const dir = tempDir("pattern-two-");
    const locks = tempDir("pattern-locks-");
    const env = {
      NATS_URL: nats.url,
      LOOMINAL_PROJECT_ID: uniqueProjectId(),
      LOOMINAL_LOCK_DIR: locks.path,
      LOOMINAL_LOG_LEVEL: "warn",
    };
    const first = await spawnStdio({ command: process.execPath, args: [BIN], cwd: dir.path, env });
    const second = await spawnStdio({ command: process.execPath, args: [BIN], cwd: dir.path, env });
    try {
      const idOf = async (c: typeof first) =>
        field<{ agentId: string }>(await c.call("pattern_more", { tool: "pattern_health" }), "identity")
          .agentId;
      const [a, b] = [await idOf(first), await idOf(second)];
      expect(a).not.toBe(b);
      const mine = await first.call("pattern_remember", {
        content: "first's private note",
        category: "longterm",
      });
      expect(mine.isError).toBe(false);
      const theirs = await second.call("pattern_remember", { content: "second's private note" });
      expect(theirs.isError).toBe(false);
      const seenBySecond = await second.call("pattern_recall_context", { scopes: ["private"] });
      expect(seenBySecond.text).toContain("second's private note");
      expect(seenBySecond.text).not.toContain("first's private note");
      const seenByFirst = await first.call("pattern_search", { query: "private note" });
      expect(JSON.stringify(seenByFirst.structured)).toContain("first's private note");
      expect(JSON.stringify(seenByFirst.structured)).not.toContain("second's private note");
    } finally {
      await first.close();
      await second.close();
      dir.cleanup();
      locks.cleanup();
    }
  });
});

describe("loominal-pattern configuration", () => {
  it("refuses to start with a bad LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES, naming the variable", async () => {
    const dir = tempDir("pattern-badenv-");
    try {
      const child = spawn(process.execPath, [BIN], {
        env: {
          ...process.env,
          NATS_URL: nats.url,
          LOOMINAL_PROJECT_DIR: dir.path,
          LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES: "lots",
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => {
        stderr += b.toString("utf8");
      });
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code).toBe(2);
      expect(stderr).toContain("LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES");
    } finally {
      dir.cleanup();
    }
  });

  it("LOOMINAL_TOOLS=full lists every tool; any value but core or full stops it, naming the variable", async () => {
    const dir = tempDir("pattern-tools-");
    const env = { NATS_URL: nats.url, LOOMINAL_PROJECT_DIR: dir.path, LOOMINAL_LOG_LEVEL: "warn" };
    try {
      const client = await spawnStdio({
        command: process.execPath,
        args: [BIN],
        env: { ...env, LOOMINAL_TOOLS: "full" },
      });
      try {
        const names = (await client.listTools()).map((t) => t.name);
        expect(names).toHaveLength(15);
        expect(names).not.toContain("pattern_more");
      } finally {
        await client.close();
      }
      const { code, stderr } = await runToExit(process.execPath, [BIN], {
        env: { PATH: process.env.PATH ?? "", ...env, LOOMINAL_TOOLS: "some" },
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/loominal-pattern: invalid_config: LOOMINAL_TOOLS is "some".*"core".*"full"/);
    } finally {
      dir.cleanup();
    }
  });
});

describe("without NATS", () => {
  it("starts, lists tools, answers with nats_unavailable, and reports health as unavailable", async () => {
    const dir = tempDir("pattern-down-");
    const port = await freePort();
    const config = loadConfig({
      env: {
        NATS_URL: `nats://127.0.0.1:${port}`,
        LOOMINAL_PROJECT_DIR: dir.path,
        LOOMINAL_PROJECT_ID: uniqueProjectId(),
      },
    });
    const fabric = Fabric.start({ nats: config.nats, reconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    const store = new MemoryStore({
      fabric,
      identity: { projectId: config.projectId, agentId: config.agentId, userId: config.userId },
      readyTimeoutMs: 200,
    });
    const client = await connectInMemory(createPatternServer({ store, projectDir: config.projectDir }));
    try {
      expect(await client.listTools()).toHaveLength(15);
      const r = await client.call("pattern_remember", { content: "x" });
      expect(r.isError).toBe(true);
      expect(r.error?.code).toBe("nats_unavailable");
      expect(r.text).toContain(`NATS unreachable at nats://127.0.0.1:${port}`);
      const h = await client.call("pattern_health", {});
      expect(h.isError).toBe(false);
      expect(h.structured).toMatchObject({ status: "unavailable" });
    } finally {
      await client.close();
      await store.close();
      await fabric.close();
      dir.cleanup();
    }
  });
});
