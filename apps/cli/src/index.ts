export { preferredPort } from "./actions/nats.js";
export { EXIT_NOT_RUNNING } from "./commands/nats.js";
export { type CliContext, processContext } from "./context.js";
export {
  DEFAULT_NATS_PORT,
  LocalNats,
  type LocalNatsPaths,
  type LocalNatsStatus,
  localNatsPaths,
  type StartedServer,
  type StartOptions,
} from "./local-nats.js";
export {
  buildMcpConfig,
  MCP_SERVERS,
  type McpConfig,
  type McpConfigResult,
  type McpServerEntry,
  type McpServerName,
  workspaceRoot,
} from "./mcp-config.js";
export { findNatsServer, natsServerVersionOf, requireNatsServer } from "./nats-binary.js";
export { type NatsProbe, probeNats } from "./probe.js";
export { createProgram, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, runCli } from "./program.js";
export { cliVersion } from "./version.js";
