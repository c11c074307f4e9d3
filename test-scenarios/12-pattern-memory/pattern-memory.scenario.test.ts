import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnStdio, type TestClient, tempDir, uniqueProjectId } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callOk, callWhenConnected } from "../lib/mcp.js";
import { NATS_MODES, ScenarioNats } from "../lib/nats.js";

const here = dirname(fileURLToPath(import.meta.url));
const PATTERN_BIN = join(here, "..", "..", "packages", "pattern", "dist", "bin.js");

const ALICE = "a1".repeat(16);
const BOB = "b2".repeat(16);

type Memory = { id: string; content: string; scope: string; category: string };

describe.each(NATS_MODES)("12 pattern memory across agents, users and projects (%s NATS)", (mode) => {
  const app = uniqueProjectId("app");
  const lib = uniqueProjectId("lib");
  const root = tempDir("scenario-12-");
  let nats: ScenarioNats;
  const clients: TestClient[] = [];

  // alice works in both projects (one generated user per project, the same userId); bob only in app.
  const users = [
    { name: "alice-app", projectId: app, userId: ALICE },
    { name: "alice-lib", projectId: lib, userId: ALICE },
    { name: "bob-app", projectId: app, userId: BOB },
  ];

  beforeAll(async () => {
    if (!existsSync(PATTERN_BIN)) throw new Error(`${PATTERN_BIN} is missing: run pnpm -w build`);
    for (const projectId of [app, lib]) {
      mkdirSync(join(root.path, projectId));
      writeFileSync(join(root.path, projectId, ".loominal.json"), JSON.stringify({ projectId }));
    }
    nats = await ScenarioNats.start(mode, users);
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await nats?.stop();
    root.cleanup();
  });

  /** One agent = one `loominal-pattern` process in its project's directory, as its MCP host starts it. */
  async function startAgent(user: string, projectId: string): Promise<TestClient> {
    const client = await spawnStdio({
      command: process.execPath,
      args: [PATTERN_BIN],
      cwd: join(root.path, projectId),
      // Every tool listed: the scenario calls pattern_forget, which the default (core) profile keeps
      // behind pattern_more.
      env: {
        ...nats.env(user),
        LOOMINAL_AGENT_NAME: user,
        LOOMINAL_LOG_LEVEL: "warn",
        LOOMINAL_TOOLS: "full",
      },
    });
    clients.push(client);
    return client;
  }

  const remember = async (client: TestClient, args: Record<string, unknown>) =>
    (await callOk(client, "pattern_remember", args)).memory as Memory;

  const contents = async (client: TestClient, scopes: string[]) =>
    ((await callOk(client, "pattern_recall_context", { scopes, maxBytes: 65_536 })).memories as Memory[])
      .map((m) => m.content)
      .sort();

  it("each scope reaches exactly whom it names, and only an author forgets a memory", async () => {
    const aliceApp = await startAgent("alice-app", app);
    const bobApp = await startAgent("bob-app", app);
    const aliceLib = await startAgent("alice-lib", lib);

    await remember(aliceApp, { content: "alice private note", category: "longterm" });
    const team = await remember(aliceApp, { content: "app uses pnpm", scope: "team", category: "decisions" });
    await remember(aliceApp, { content: "alice prefers small commits", scope: "personal", category: "core" });
    const pub = await remember(aliceApp, { content: "nats 2.9 has no per-key ttl", scope: "public" });
    await remember(bobApp, { content: "bob private note", category: "longterm" });

    // bob (same project, another user): the team and public memories, nothing private or personal of alice.
    expect(await contents(bobApp, ["private", "personal", "team", "public"])).toEqual([
      "app uses pnpm",
      "bob private note",
      "nats 2.9 has no per-key ttl",
    ]);
    // alice in another project: her personal memory and the public one, not app's team or private ones.
    expect(await contents(aliceLib, ["private", "personal", "team", "public"])).toEqual([
      "alice prefers small commits",
      "nats 2.9 has no per-key ttl",
    ]);

    // Only the author forgets: bob may not forget alice's team or public memory.
    for (const memoryId of [team.id, pub.id]) {
      const refused = await callWhenConnected(bobApp, "pattern_forget", { memoryId, force: true });
      expect(refused.isError).toBe(true);
      expect(refused.error?.code).toBe("forbidden");
    }
    await callOk(aliceApp, "pattern_forget", { memoryId: pub.id });
    expect(await contents(aliceLib, ["public"])).toEqual([]);
    expect(await contents(bobApp, ["team"])).toEqual(["app uses pnpm"]);
  });
});
