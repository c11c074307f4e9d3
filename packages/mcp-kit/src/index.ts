export type { McpServer } from "@modelcontextprotocol/server";
export {
  describeIssues,
  TOOL_ERROR_META_KEY,
  type ToolErrorBody,
  type ToolErrorContext,
  type ToolErrorResult,
  toolErrorResult,
} from "./errors.js";
export {
  RUNTIME_FAILURE_EXIT_CODE,
  runServerMain,
  runStdio,
  STARTUP_FAILURE_EXIT_CODE,
  type StdioOptions,
} from "./stdio.js";
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  LineStdioTransport,
  type LineStdioTransportOptions,
  TransportFailure,
} from "./stdio-transport.js";
export {
  type CallResult,
  createToolServer,
  defineTool,
  MAX_ARGUMENT_DEPTH,
  type ServerInfo,
  type ToolAnnotationsInput,
  type ToolDefinition,
  type ToolResultData,
  type ToolSpec,
} from "./tool.js";
export { packageVersion } from "./version.js";
