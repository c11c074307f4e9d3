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
  firstSentence,
  gatewayTool,
  TOOL_PROFILE_ENV,
  TOOL_PROFILE_VARIABLE,
  TOOL_PROFILES,
  type ToolProfile,
  type ToolSurface,
  toolProfileFromEnv,
  toolsForSurface,
} from "./profiles.js";
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
  inputJsonSchema,
  MAX_ARGUMENT_DEPTH,
  outputJsonSchema,
  type ServerInfo,
  type ToolAnnotationsInput,
  type ToolDefinition,
  type ToolResultData,
  type ToolSpec,
} from "./tool.js";
export { packageVersion } from "./version.js";
