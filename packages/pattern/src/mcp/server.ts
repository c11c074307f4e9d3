import { createToolServer, type McpServer, packageVersion } from "@loominal/mcp-kit";
import type { PatternToolDeps } from "./deps.js";
import { patternTools } from "./tools/index.js";

export const PATTERN_SERVER_NAME = "loominal-pattern";
export const PATTERN_VERSION = packageVersion(import.meta.url);

const INSTRUCTIONS = [
  "Pattern is your memory across sessions.",
  "At the start of a session call pattern_recall_context.",
  "Remember working notes with pattern_remember (private/recent, expires in 24 h) or pattern_remember_task;",
  "keep what matters with pattern_commit_insight; share what the team should know with pattern_remember_learning or pattern_share_learning.",
  "Never store secrets: tool results warn when content looks like one.",
].join(" ");

/** The Pattern MCP server for one agent (a factory, so tests can run it in-process). */
export function createPatternServer(deps: PatternToolDeps): McpServer {
  return createToolServer(
    { name: PATTERN_SERVER_NAME, version: PATTERN_VERSION, instructions: INSTRUCTIONS },
    patternTools(deps),
  );
}
