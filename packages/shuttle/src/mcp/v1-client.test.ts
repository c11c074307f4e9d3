import { NatsServer, spawnStdio } from "@loominal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, callOk, makeProject, startShuttle } from "../orchestration.test-helper.js";
import { SHUTTLE_CORE_TOOLS } from "./server.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server.stop();
});

const sub = (id: string, dependsOn?: string[]) => ({
  id,
  title: `Subtask ${id}`,
  description: `Do ${id}`,
  capability: "nobody-has-this",
  ...(dependsOn ? { dependsOn } : {}),
});

/**
 * The v1 SDK client (`@modelcontextprotocol/sdk` 1.x) checks every result's structuredContent against the
 * output schema it saw in `tools/list` and throws when it does not match: successful results and error
 * results must both reach it.
 */
describe("shuttle MCP server with a v1 SDK client", () => {
  it("answers calls, and an error reaches the client with its code and message", async () => {
    const project = makeProject(server.url);
    const s = await startShuttle(project, server.url, { sdk: "v1" });
    try {
      expect(await s.client.listTools()).toHaveLength(8);
      const missing = await s.client.call("shuttle_get_state", { orchestrationId: "0".repeat(32) });
      expect(missing).toMatchObject({ isError: true, structured: undefined });
      expect(missing.error?.code).toBe("not_found");
      expect(missing.text).toMatch(/^not_found: /);

      const plan = await callOk(s.client, "shuttle_assess_task", {
        task: "t",
        subtasks: [sub("a"), sub("b", ["a"])],
      });
      const orchestrationId = String(plan.orchestrationId);
      await callOk(s.client, "shuttle_checkpoint", { orchestrationId, note: "thinking" });
      const early = await s.client.call("shuttle_synthesize_results", { orchestrationId });
      expect(early.error?.code).toBe("invalid_transition");
      await callOk(s.client, "shuttle_spawn_subagents", { orchestrationId });
      await callOk(s.client, "shuttle_get_state", { orchestrationId });
      await callOk(s.client, "shuttle_get_results", { orchestrationId });
      await callOk(s.client, "shuttle_list_orchestrations", {});
      await callOk(s.client, "shuttle_cancel", { orchestrationId, reason: "done trying" });
    } finally {
      await s.close();
      project.cleanup();
    }
  });

  it("the built bin over stdio answers a v1 client, errors included", async () => {
    const project = makeProject(server.url);
    const client = await spawnStdio({
      command: process.execPath,
      args: [BIN],
      env: { NATS_URL: server.url, LOOMINAL_PROJECT_DIR: project.dir, LOOMINAL_AGENT_NAME: "stdio-v1" },
      sdk: "v1",
    });
    try {
      expect((await client.listTools()).map((t) => t.name)).toEqual([...SHUTTLE_CORE_TOOLS, "shuttle_more"]);
      const missing = await client.call("shuttle_get_state", { orchestrationId: "0".repeat(32) });
      expect(missing.error?.code).toBe("not_found");
      const plan = await client.call("shuttle_assess_task", { task: "stdio", subtasks: [sub("only")] });
      expect(plan.isError).toBe(false);
      expect(plan.structured?.orchestrationId).toMatch(/^[0-9a-f]{32}$/);
      // Tools outside the core profile answer through shuttle_more, errors included.
      const listed = await client.call("shuttle_more", {
        tool: "shuttle_list_orchestrations",
        arguments: {},
      });
      expect(listed.isError, listed.text).toBe(false);
      expect(JSON.stringify(listed.structured)).toContain(String(plan.structured?.orchestrationId));
      const unknown = await client.call("shuttle_more", {
        tool: "shuttle_checkpoint",
        arguments: { orchestrationId: "0".repeat(32), note: "x" },
      });
      expect(unknown).toMatchObject({ isError: true, structured: undefined });
      expect(unknown.error?.code).toBe("not_found");
    } finally {
      await client.close();
      project.cleanup();
    }
  });
});
