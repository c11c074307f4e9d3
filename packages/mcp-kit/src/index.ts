export type { McpServer } from "@modelcontextprotocol/server";
export {
  describeIssues,
  TOOL_ERROR_META_KEY,
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
