export { CANCEL_PENDING_FILE, type PendingCancel, PendingCancels } from "./cancels.js";
export { DRIVER_FILE, type DriverInfo, DriverLocks, type LockOutcome } from "./driver.js";
export {
  InvalidTransitionError,
  NotRegularFileError,
  OrchestrationNotFoundError,
  PathEscapeError,
  PlanError,
} from "./errors.js";
export type { ShuttleToolDeps } from "./mcp/schemas.js";
export {
  createShuttleServer,
  SHUTTLE_CORE_TOOLS,
  SHUTTLE_GATEWAY_TOOL,
  SHUTTLE_SERVER_NAME,
  SHUTTLE_VERSION,
  type ShuttleServerOptions,
} from "./mcp/server.js";
export { shuttleTools } from "./mcp/tools/index.js";
export { type OpenedShuttle, type OpenShuttleOptions, openShuttle, resolveWorkDir } from "./open.js";
export {
  type AssessOutcome,
  appendCheckpoint,
  type CancelOutcome,
  CHECKPOINTS_KEPT,
  type OrchestrationSummary,
  OUTPUT_READ_LIMIT,
  type ResultsView,
  Shuttle,
  type ShuttleOptions,
  type SubtaskResult,
  summarize,
  type WorkQueuePort,
} from "./orchestrator.js";
export { type FileRead, WorkDir } from "./paths.js";
export { assertTransition, canTransition, isTerminalPhase, withPhase } from "./phases.js";
export { MAX_SUBTASKS, type OrderedPlan, orderPlan, type PlanTemplate, planTemplate } from "./plan.js";
export { compactRecord, OrchestrationStore, RECORD_FILE, shuttleBucketSpec } from "./store.js";
export {
  type Contradiction,
  detectContradictions,
  type KeyStatement,
  keyLines,
  type Synthesis,
  type SynthesisFormat,
  type SynthesisGap,
  synthesize,
} from "./synthesis.js";
export {
  AppliedStates,
  MAX_OFFER_GENERATIONS,
  subtaskWorkId,
  WARP_UNQUEUED_REASON,
  wasDroppedByWarp,
  workIdGeneration,
} from "./work-items.js";
