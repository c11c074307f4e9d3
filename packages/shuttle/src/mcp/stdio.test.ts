import { existsSync } from "node:fs";
import { join } from "node:path";
import { NatsServer, runToExit, spawnStdio } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, makeProject } from "../orchestration.test-helper.js";

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
      const tools = await client.listTools();
      expect(tools).toHaveLength(8);
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
});
