import { createToolServer, type McpServer, packageVersion } from "@loominal/mcp-kit";
import type { ShuttleToolDeps } from "./schemas.js";
import { shuttleTools } from "./tools/index.js";

export const SHUTTLE_SERVER_NAME = "loominal-shuttle";
export const SHUTTLE_VERSION = packageVersion(import.meta.url);

const INSTRUCTIONS = [
  "Shuttle orchestrates a task across subagents through Warp work queues.",
  "1. shuttle_assess_task without subtasks gives a template; plan the subtasks (you are the planner) and call it again.",
  "2. shuttle_spawn_subagents offers wave 0; later subtasks are offered as their dependencies complete.",
  "3. shuttle_get_state to follow; shuttle_get_results to read outputs; shuttle_synthesize_results once in collection.",
  "shuttle_cancel stops outstanding work. Workers write their output to contextData.shuttle.outputPath.",
].join("\n");

/** The Shuttle MCP server with its eight tools (a factory, so tests run it in-process). */
export function createShuttleServer(deps: ShuttleToolDeps): McpServer {
  return createToolServer(
    { name: SHUTTLE_SERVER_NAME, version: SHUTTLE_VERSION, instructions: INSTRUCTIONS },
    shuttleTools(deps),
  );
}
