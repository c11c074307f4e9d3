export {
  type BrowserContext,
  CHROMIUM_BIN,
  CHROMIUM_FLAGS,
  type HeadlessChromium,
  launchChromium,
  type Page,
} from "./chromium.js";
export { NatsCluster } from "./cluster.js";
export {
  type EventuallyOptions,
  eventually,
  type ProcessOutcome,
  runToExit,
  sleep,
  tempDir,
  uniqueProjectId,
} from "./helpers.js";
export {
  connectInMemory,
  type ListedTool,
  type McpClientOptions,
  type McpSdk,
  type SpawnOptions,
  spawnStdio,
  type TestClient,
  TOOL_ERROR_META_KEY,
  type ToolCallError,
  type ToolCallOutcome,
} from "./mcp.js";
export {
  freePort,
  NatsServer,
  type NatsServerOptions,
  natsServerBinary,
  natsServerVersion,
} from "./nats-server.js";
export {
  NODE_DEFAULT_KEEP_ALIVE_MS,
  type PooledAnswer,
  pooledRequest,
  requestsAcrossIdle,
} from "./pooled-http.js";
export {
  type CollectEventsOptions,
  collectServerSentEvents,
  type ServerSentEvent,
} from "./sse.js";
export { TcpProxy } from "./tcp-proxy.js";
