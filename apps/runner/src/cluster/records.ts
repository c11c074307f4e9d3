// The record schemas live in @loominal/protocol (Weft's dashboard reads the same records); these are the
// names the Runner's code uses for them.
export {
  RUN_STATUSES,
  RUNNER_PAUSE_STATES as PAUSE_STATES,
  type RunEvent,
  type RunnerHeartbeat as Heartbeat,
  type RunnerLockRecord as LockRecord,
  type RunnerPauseRecord as PauseRecord,
  type RunnerQuotaRecord as QuotaRecord,
  type RunRecord,
  type RunRequest,
  type RunStatus,
  runEventSchema,
  runnerHeartbeatSchema as heartbeatSchema,
  runnerLockRecordSchema as lockRecordSchema,
  runnerPauseRecordSchema as pauseRecordSchema,
  runnerQuotaRecordSchema as quotaRecordSchema,
  runRecordSchema,
  runRequestSchema,
  TERMINAL_RUN_EVENTS as TERMINAL_EVENTS,
  TERMINAL_RUN_STATUSES as TERMINAL,
} from "@loominal/protocol";
