import { createToolServer, type McpServer, packageVersion, type ToolProfile } from "@loominal/mcp-kit";
import type { ShuttleToolDeps } from "./schemas.js";
import { shuttleTools } from "./tools/index.js";

export const SHUTTLE_SERVER_NAME = "loominal-shuttle";
export const SHUTTLE_VERSION = packageVersion(import.meta.url);

/**
 * The tools the `core` profile lists: plan, start, follow, read and synthesise an orchestration.
 * `shuttle_cancel`, `shuttle_checkpoint` and `shuttle_list_orchestrations` are reached through `shuttle_more`.
 */
export const SHUTTLE_CORE_TOOLS = [
  "shuttle_assess_task",
  "shuttle_spawn_subagents",
  "shuttle_get_state",
  "shuttle_get_results",
  "shuttle_synthesize_results",
] as const;
export const SHUTTLE_GATEWAY_TOOL = "shuttle_more";

const INSTRUCTIONS = [
  "Shuttle orchestrates a task across subagents through Warp work queues.",
  "1. shuttle_assess_task without subtasks gives a template; plan the subtasks (you are the planner) and call it again.",
  "2. shuttle_spawn_subagents offers wave 0; later subtasks are offered as their dependencies complete.",
  "3. shuttle_get_state to follow; shuttle_get_results to read outputs; shuttle_synthesize_results once in collection.",
  "shuttle_cancel stops outstanding work. Workers write their output to contextData.shuttle.outputPath.",
].join("\n");

export interface ShuttleServerOptions {
  /**
   * Which tools to list (default `full`, what a program embedding the server wants; the
   * `loominal-shuttle` bin passes `LOOMINAL_TOOLS`, whose default is `core`).
   */
  tools?: ToolProfile;
}

/** The Shuttle MCP server (a factory, so tests run it in-process). */
export function createShuttleServer(deps: ShuttleToolDeps, options: ShuttleServerOptions = {}): McpServer {
  return createToolServer(
    { name: SHUTTLE_SERVER_NAME, version: SHUTTLE_VERSION, instructions: INSTRUCTIONS },
    shuttleTools(deps),
    {
      profile: options.tools ?? "full",
      core: SHUTTLE_CORE_TOOLS,
      gateway: SHUTTLE_GATEWAY_TOOL,
      server: "Shuttle",
    },
  );
}
