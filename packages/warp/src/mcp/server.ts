import { createToolServer, type McpServer, packageVersion } from "@loominal/mcp-kit";
import type { Warp } from "../warp.js";
import { warpTools } from "./tools/index.js";

export const WARP_SERVER_NAME = "loominal-warp";
export const WARP_SERVER_VERSION = packageVersion(import.meta.url);

const INSTRUCTIONS = [
  "Warp connects you with the other agents of this project over NATS.",
  "Start with warp_handle_get (who you are) and warp_registry_register (so others can find you).",
  "Channels (warp_channels_*) are shared conversations; direct messages (warp_messages_*) go to one agent's inbox",
  "and each is returned to its reader exactly once. Scopes (private, personal, team, public) decide who can read.",
].join(" ");

/** The Warp MCP server over an opened Warp library (a factory, so tests run it in-process). */
export function createWarpServer(warp: Warp): McpServer {
  return createToolServer(
    { name: WARP_SERVER_NAME, version: WARP_SERVER_VERSION, instructions: INSTRUCTIONS },
    warpTools({ warp }),
  );
}
