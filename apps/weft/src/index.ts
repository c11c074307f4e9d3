export { OPERATIONS, type Operation, submitWorkSchema } from "./api.js";
export { type Principal, projectFor, TOKEN_FILE, TokenAuthenticator } from "./auth.js";
export {
  type ApiToken,
  loadWeftConfig,
  parseTokens,
  readConfigFile,
  WEFT_ENV,
  type WeftConfig,
  weftFileSchema,
} from "./config.js";
export { createApp, MAX_BODY_BYTES } from "./http.js";
export {
  createWeftMcpServer,
  mcpOperations,
  natsRequester,
  toolName,
  WEFT_CORE_TOOLS,
  WEFT_GATEWAY_TOOL,
  WEFT_MCP_NAME,
  type WeftMcpOptions,
} from "./mcp/server.js";
export { GithubActionsMechanism, githubActionsConfigSchema } from "./mechanisms/github-actions.js";
export { type RemoteMechanismOptions, remoteMechanisms } from "./mechanisms/index.js";
export { jobManifest, KubernetesMechanism, kubernetesConfigSchema } from "./mechanisms/kubernetes.js";
export { LocalMechanism, localConfigSchema } from "./mechanisms/local.js";
export { hostKeyFingerprint, SshMechanism, sshConfigSchema } from "./mechanisms/ssh.js";
export type {
  HealthResult,
  Mechanism,
  MechanismHandle,
  RemoteStatus,
  StartRequest,
} from "./mechanisms/types.js";
export { WebhookMechanism, webhookConfigSchema, webhookSignature } from "./mechanisms/webhook.js";
export { WeftMetrics } from "./metrics.js";
export { COORD_QUEUE, type CoordReply, serveCoordinatorApi } from "./nats-api.js";
export { openApiDocument, openApiPath } from "./openapi.js";
export { type RunningWeft, startWeft } from "./serve.js";
export { WEFT_AGENT_ID, Weft } from "./weft.js";
