export type { McpServer } from "@modelcontextprotocol/server";
export {
  connectInMemory,
  type ListedTool,
  type SpawnOptions,
  spawnStdio,
  type TestClient,
  type ToolCallOutcome,
} from "./client.js";
export {
  describeIssues,
  type ToolErrorBody,
  type ToolErrorContext,
  type ToolErrorResult,
  toolErrorResult,
} from "./errors.js";
export { runStdio, type StdioOptions } from "./stdio.js";
export {
  type CallResult,
  createToolServer,
  defineTool,
  type ServerInfo,
  type ToolAnnotationsInput,
  type ToolDefinition,
  type ToolResultData,
  type ToolSpec,
} from "./tool.js";
