import { createToolServer, type McpServer, packageVersion, type ToolProfile } from "@loominal/mcp-kit";
import type { PatternToolDeps } from "./deps.js";
import { patternTools } from "./tools/index.js";

export const PATTERN_SERVER_NAME = "loominal-pattern";
export const PATTERN_VERSION = packageVersion(import.meta.url);

/**
 * The tools the `core` profile lists: recall at the start of a session, remember, keep, share, search.
 * The others (bulk, export/import, forget, core memories, maintenance) are reached through `pattern_more`.
 */
export const PATTERN_CORE_TOOLS = [
  "pattern_recall_context",
  "pattern_remember",
  "pattern_remember_learning",
  "pattern_commit_insight",
  "pattern_search",
] as const;
export const PATTERN_GATEWAY_TOOL = "pattern_more";

const INSTRUCTIONS = [
  "Pattern is your memory across sessions.",
  "At the start of a session call pattern_recall_context.",
  "Remember working notes with pattern_remember (private/recent, expires in 24 h);",
  "keep what matters with pattern_commit_insight; share what the team should know with pattern_remember_learning.",
  "Never store secrets: tool results warn when content looks like one.",
].join(" ");

export interface PatternServerOptions {
  /**
   * Which tools to list (default `full`, what a program embedding the server wants; the
   * `loominal-pattern` bin passes `LOOMINAL_TOOLS`, whose default is `core`).
   */
  tools?: ToolProfile;
}

/** The Pattern MCP server for one agent (a factory, so tests can run it in-process). */
export function createPatternServer(deps: PatternToolDeps, options: PatternServerOptions = {}): McpServer {
  return createToolServer(
    { name: PATTERN_SERVER_NAME, version: PATTERN_VERSION, instructions: INSTRUCTIONS },
    patternTools(deps),
    {
      profile: options.tools ?? "full",
      core: PATTERN_CORE_TOOLS,
      gateway: PATTERN_GATEWAY_TOOL,
      server: "Pattern",
    },
  );
}
