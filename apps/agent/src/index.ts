export { type AgentOptions, parseDuration, resolveOptions } from "./options.js";
export { RETRYABLE_EXIT_CODE, type StopReason, Worker } from "./worker.js";
