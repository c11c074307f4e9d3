import { createToolServer, type McpServer, packageVersion, type ToolProfile } from "@loominal/mcp-kit";
import type { Warp } from "../warp.js";
import { warpTools } from "./tools/index.js";

export const WARP_SERVER_NAME = "loominal-warp";
export const WARP_SERVER_VERSION = packageVersion(import.meta.url);

/**
 * The tools the `core` profile lists: what an agent sharing a repository uses every session (be found,
 * message, lease files). The others are reached through `warp_more`.
 */
export const WARP_CORE_TOOLS = [
  "warp_registry_register",
  "warp_registry_discover",
  "warp_messages_send_direct",
  "warp_messages_read_direct",
  "warp_channels_send",
  "warp_channels_read",
  "warp_lease_acquire",
  "warp_lease_release",
] as const;
export const WARP_GATEWAY_TOOL = "warp_more";

const INSTRUCTIONS = [
  "Warp connects you with the other agents of this project over NATS.",
  "Start with warp_registry_register (so others can find and message you).",
  "Channels (warp_channels_*) are shared conversations; direct messages (warp_messages_*) go to one agent's inbox",
  "and each is returned to its reader exactly once. Lease files with warp_lease_acquire before changing them.",
].join(" ");

export interface WarpServerOptions {
  /**
   * Which tools to list (default `full`, what a program embedding the server wants; the `loominal-warp`
   * bin passes `LOOMINAL_TOOLS`, whose default is `core`).
   */
  tools?: ToolProfile;
}

/** The Warp MCP server over an opened Warp library (a factory, so tests run it in-process). */
export function createWarpServer(warp: Warp, options: WarpServerOptions = {}): McpServer {
  return createToolServer(
    { name: WARP_SERVER_NAME, version: WARP_SERVER_VERSION, instructions: INSTRUCTIONS },
    warpTools({ warp }),
    { profile: options.tools ?? "full", core: WARP_CORE_TOOLS, gateway: WARP_GATEWAY_TOOL, server: "Warp" },
  );
}
