import { existsSync } from "node:fs";
import { join } from "node:path";
import { NatsServer, runToExit, spawnStdio } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, makeProject } from "../orchestration.test-helper.js";
import { SHUTTLE_CORE_TOOLS } from "./server.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server.stop();
});

describe("loominal-shuttle over stdio", () => {
  it("serves the tools from the built bin as an MCP client spawns it", async () => {
    const project = makeProject(server.url);
    const client = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      env: { NATS_URL: server.url, LOOMINAL_PROJECT_DIR: project.dir, LOOMINAL_AGENT_NAME: "stdio-parent" },
    });
    try {
      // The default profile: the core tools and shuttle_more, which reaches the others.
      const tools = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual([...SHUTTLE_CORE_TOOLS, "shuttle_more"]);
      const plan = await client.call("shuttle_assess_task", {
        task: "stdio",
        subtasks: [{ id: "only", title: "Only", description: "d", capability: "research" }],
      });
      expect(plan.isError).toBe(false);
      const id = String(plan.structured?.orchestrationId);
      expect(existsSync(join(project.dir, ".loominal", "shuttle", id, "orchestration.json"))).toBe(true);
      const spawned = await client.call("shuttle_spawn_subagents", { orchestrationId: id });
      expect(spawned.structured).toMatchObject({ phase: "execution" });
      const state = await client.call("shuttle_get_state", { orchestrationId: id });
      expect(state.structured).toMatchObject({ summary: { phase: "execution", outstanding: 1 } });
      const noted = await client.call("shuttle_more", {
        tool: "shuttle_checkpoint",
        arguments: { orchestrationId: id, note: "through the gateway" },
      });
      expect(noted.isError, noted.text).toBe(false);
      const unknown = await client.call("shuttle_more", {
        tool: "shuttle_cancel",
        arguments: { orchestrationId: "0".repeat(32) },
      });
      expect(unknown).toMatchObject({ isError: true, structured: undefined });
      expect(unknown.error?.code).toBe("not_found");
    } finally {
      await client.close();
      project.cleanup();
    }
  });
});

describe("loominal-shuttle start-up failure", () => {
  it("exits 2 with the reason on stderr when the configuration is bad", async () => {
    const project = makeProject(server.url);
    try {
      const { code, stderr } = await runToExit(process.execPath, [BIN], {
        cwd: project.dir,
        env: { PATH: process.env.PATH ?? "", LOOMINAL_AGENT_NAME: "Not.A.Name" },
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/loominal-shuttle: .*LOOMINAL_AGENT_NAME/);
    } finally {
      project.cleanup();
    }
  });

  it("LOOMINAL_TOOLS other than core or full stops it, naming the variable; full lists every tool", async () => {
    const project = makeProject(server.url);
    try {
      const { code, stderr } = await runToExit(process.execPath, [BIN], {
        cwd: project.dir,
        env: { PATH: process.env.PATH ?? "", LOOMINAL_TOOLS: "minimal" },
      });
      expect(code).toBe(2);
      expect(stderr).toMatch(/loominal-shuttle: invalid_config: LOOMINAL_TOOLS is "minimal".*"core".*"full"/);
      const client = await spawnStdio({
        command: process.execPath,
        args: [BIN],
        env: { NATS_URL: server.url, LOOMINAL_PROJECT_DIR: project.dir, LOOMINAL_TOOLS: "full" },
      });
      try {
        const names = (await client.listTools()).map((t) => t.name);
        expect(names).toHaveLength(8);
        expect(names).toContain("shuttle_list_orchestrations");
      } finally {
        await client.close();
      }
    } finally {
      project.cleanup();
    }
  });
});
