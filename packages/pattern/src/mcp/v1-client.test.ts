import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NatsServer, spawnStdio, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryOf, openAgent } from "../pattern.test-helper.js";
import { PATTERN_CORE_TOOLS } from "./server.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "bin.js");

let nats: NatsServer;

beforeAll(async () => {
  nats = await NatsServer.start();
});
afterAll(async () => {
  await nats.stop();
});

/**
 * The v1 SDK client (`@modelcontextprotocol/sdk` 1.x) checks every result's structuredContent against the
 * output schema it saw in `tools/list` and throws when it does not match: successful results and error
 * results must both reach it.
 */
describe("pattern MCP server with a v1 SDK client", () => {
  it("answers calls, and an error reaches the client with its code and message", async () => {
    const a = await openAgent(nats.url, { projectId: uniqueProjectId(), agentName: "v1", sdk: "v1" });
    try {
      expect(await a.client.listTools()).toHaveLength(15);
      const m = memoryOf(
        await a.ok("pattern_remember", { content: "from a v1 client", category: "longterm" }),
      );
      await a.ok("pattern_recall_context", {});
      await a.ok("pattern_search", { query: "client" });
      await a.ok("pattern_remember_learning", { content: "a team fact" });
      await a.ok("pattern_export", {});
      await a.ok("pattern_health", {});
      await a.ok("pattern_forget", { memoryId: m.id });
      const gone = await a.client.call("pattern_forget", { memoryId: m.id });
      expect(gone).toMatchObject({ isError: true, structured: undefined });
      expect(gone.error?.code).toBe("not_found");
      expect(gone.text).toMatch(/^not_found: /);
      const bad = await a.client.call("pattern_remember", { content: "x", scope: "team", category: "core" });
      expect(bad.error?.code).toBe("invalid_input");
    } finally {
      await a.close();
    }
  });

  it("the built bin over stdio answers a v1 client, errors included, in the core profile", async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first`);
    const dir = tempDir("pattern-v1-bin-");
    const client = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      env: {
        NATS_URL: nats.url,
        LOOMINAL_PROJECT_DIR: dir.path,
        LOOMINAL_PROJECT_ID: uniqueProjectId(),
        LOOMINAL_LOG_LEVEL: "warn",
      },
      sdk: "v1",
    });
    try {
      expect((await client.listTools()).map((t) => t.name)).toEqual([...PATTERN_CORE_TOOLS, "pattern_more"]);
      const r = await client.call("pattern_remember", { content: "over stdio" });
      expect(r.isError).toBe(false);
      const id = memoryOf(r.structured ?? {}).id;
      // pattern_forget is not a core tool: it answers through pattern_more, its errors too.
      const forget = { tool: "pattern_forget", arguments: { memoryId: id } };
      const forgotten = await client.call("pattern_more", forget);
      expect(forgotten).toMatchObject({ isError: false, structured: { memoryId: id } });
      const gone = await client.call("pattern_more", forget);
      expect(gone).toMatchObject({ isError: true, structured: undefined });
      expect(gone.error?.code).toBe("not_found");
      expect(gone.text).toMatch(/^not_found: /);
    } finally {
      await client.close();
      dir.cleanup();
    }
  });
});
