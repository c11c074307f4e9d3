export {
  AgentCatalog,
  type AgentDefinition,
  agentDefinitionSchema,
  BUILT_IN_AGENTS,
  type ProviderEntry,
  parseAgentsFile,
  TOOL_NAMES,
  type ToolName,
} from "./agents.js";
export { QuotaStore } from "./cluster/state.js";
export { bucketSpecs } from "./cluster/stores.js";
export { isLoopbackHost, loadRunnerConfig, RUNNER_ENV, type RunnerConfig } from "./env.js";
