// Record schemas of the Runner's NATS state (KV runner-*, stream runner_events): the Runner writes them,
// Weft's dashboard reads them. Field names are those of the Runner's HTTP API. Exported through records/index.ts.
import { z } from "zod";

export const RUN_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_RUN_STATUSES: ReadonlySet<RunStatus> = new Set(["completed", "failed", "cancelled"]);

const usageSchema = z.object({ input_tokens: z.number(), output_tokens: z.number() });

/** What POST /v1/runs accepted; travels in the admission stream to whichever replica runs it. */
export const runRequestSchema = z.object({
  run_id: z.string(),
  agent: z.string(),
  prompt: z.string(),
  user_id: z.string(),
  tenant_id: z.string().nullable(),
  agent_id: z.string().nullable(),
  session_id: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  run_timeout_seconds: z.number().nullable(),
  accepted_by: z.string(),
  created_at: z.string(),
});
export type RunRequest = z.infer<typeof runRequestSchema>;

/** The run record in runner-runs; field names are those of the HTTP API. */
export const runRecordSchema = runRequestSchema.omit({ prompt: true }).extend({
  status: z.enum(RUN_STATUSES),
  stop_reason: z.string().nullable(),
  error: z.string().nullable(),
  /** The replica executing the run (the accepting one while queued). */
  replica_id: z.string(),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  usage: usageSchema,
  iterations: z.number(),
  /** Where the admission message's ack goes, so the reaper can free the global slot of a dead replica's run. */
  admit_ack: z.string().nullable(),
});
export type RunRecord = z.infer<typeof runRecordSchema>;

/** A user's admitted runs: run id → the replica that accepted it. Its size never exceeds the per-user cap. */
export const runnerQuotaRecordSchema = z.object({
  user_id: z.string(),
  runs: z.record(z.string(), z.string()),
});
export type RunnerQuotaRecord = z.infer<typeof runnerQuotaRecordSchema>;

export const runnerHeartbeatSchema = z.object({
  replica_id: z.string(),
  /** Random per process: tells a live replica from a restarted one with the same id. */
  instance: z.string(),
  started_at: z.string(),
  at: z.string(),
  active_runs: z.number(),
  /** Runs not yet parked at a pause boundary (0 when the replica is fully paused). */
  unparked_runs: z.number(),
  /** The `since` of the pause this replica has seen and applied; null while running. */
  pause_since: z.string().nullable(),
  url: z.string().nullable(),
  draining: z.boolean(),
});
export type RunnerHeartbeat = z.infer<typeof runnerHeartbeatSchema>;

export const RUNNER_PAUSE_STATES = ["running", "pausing"] as const;
/** The cluster's pause flag; `paused` is derived: pausing and no replica has an unparked run. */
export const runnerPauseRecordSchema = z.object({
  state: z.enum(RUNNER_PAUSE_STATES),
  since: z.string(),
  by: z.string(),
});
export type RunnerPauseRecord = z.infer<typeof runnerPauseRecordSchema>;

export const runnerLockRecordSchema = z.object({
  run_id: z.string(),
  replica_id: z.string(),
  at: z.string(),
});
export type RunnerLockRecord = z.infer<typeof runnerLockRecordSchema>;

/** One event on a run's event stream. */
export const runEventSchema = z.object({
  run_id: z.string(),
  seq: z.number().int().min(1),
  type: z.string(),
  at: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type RunEvent = z.infer<typeof runEventSchema>;

/**
 * A message on a run's event subject: one event, or a batch of consecutive events (seq n, n+1, …) the
 * executing replica sent together. Readers accept both (older replicas write only single events).
 */
export const runEventMessageSchema = z.union([
  z.object({ events: z.array(runEventSchema).min(1) }),
  runEventSchema,
]);
export type RunEventMessage = z.infer<typeof runEventMessageSchema>;

/** The events of one message on a run's event subject, in order. */
export function runEventsOf(message: RunEventMessage): RunEvent[] {
  return "events" in message ? message.events : [message];
}

export const TERMINAL_RUN_EVENTS: ReadonlySet<string> = new Set(["done", "error"]);
