// Record and message schemas of shuttle. Owned by the package that writes them; exported through records/index.ts.
import { z } from "zod";
import { agentIdSchema, nameToken, nameTokenProblem } from "../names.js";

/**
 * Phases of an orchestration, in order. `failed` and `cancelled` end it early; `complete`, `failed` and
 * `cancelled` are terminal.
 */
export const ORCHESTRATION_PHASES = [
  "assessment",
  "spawning",
  "execution",
  "collection",
  "synthesis",
  "complete",
  "failed",
  "cancelled",
] as const;
export const orchestrationPhaseSchema = z.enum(ORCHESTRATION_PHASES);
export type OrchestrationPhase = z.infer<typeof orchestrationPhaseSchema>;

/**
 * The phases each phase may move to. Everything else is rejected with `invalid_transition`.
 * A terminal phase moves nowhere.
 */
export const PHASE_TRANSITIONS: Readonly<Record<OrchestrationPhase, readonly OrchestrationPhase[]>> = {
  assessment: ["spawning", "failed", "cancelled"],
  spawning: ["execution", "failed", "cancelled"],
  execution: ["collection", "failed", "cancelled"],
  collection: ["synthesis", "failed", "cancelled"],
  synthesis: ["complete", "failed", "cancelled"],
  complete: [],
  failed: [],
  cancelled: [],
};

export const TERMINAL_PHASES: readonly OrchestrationPhase[] = ["complete", "failed", "cancelled"];

/** A subtask id: a name token, so it is safe as a directory name and in a work item's task id. */
export const subtaskIdSchema = z.string().superRefine((value, ctx) => {
  const problem = nameTokenProblem(value, "name");
  if (problem) ctx.addIssue({ code: "custom", message: problem.replace(/^name/, "subtask id") });
});

/** One subtask as the planner (the calling agent) writes it. */
export const subtaskPlanSchema = z.strictObject({
  id: subtaskIdSchema,
  title: z.string().trim().min(1).max(200),
  description: z.string().trim().min(1).max(20_000),
  capability: nameToken("capability"),
  dependsOn: z.array(subtaskIdSchema).max(100).optional(),
});
export type SubtaskPlan = z.infer<typeof subtaskPlanSchema>;

/**
 * Where a subtask is:
 * - `waiting`: some dependency has not completed yet (or offering it failed and will be retried);
 * - `offered`: a work item is in the queue; `claimed`: a worker holds it;
 * - `completed` / `failed` (the work item died or failed for good) / `blocked` (a dependency failed, so it
 *   is never offered) / `cancelled`: final.
 */
export const SUBTASK_STATUSES = [
  "waiting",
  "offered",
  "claimed",
  "completed",
  "failed",
  "blocked",
  "cancelled",
] as const;
export const subtaskStatusSchema = z.enum(SUBTASK_STATUSES);
export type SubtaskStatus = z.infer<typeof subtaskStatusSchema>;
export const FINAL_SUBTASK_STATUSES: readonly SubtaskStatus[] = [
  "completed",
  "failed",
  "blocked",
  "cancelled",
];

const isoTime = z.string().min(1).max(40);

export const subtaskStateSchema = z.strictObject({
  id: subtaskIdSchema,
  title: z.string(),
  description: z.string(),
  capability: nameToken("capability"),
  dependsOn: z.array(subtaskIdSchema),
  /** 0-based wave: every subtask of wave n depends only on subtasks of earlier waves. */
  wave: z.int().min(0),
  status: subtaskStatusSchema,
  /** The Warp work item currently carrying this subtask. */
  workId: agentIdSchema.optional(),
  /** Output file, relative to the orchestration directory (`subtasks/<id>/output.md`). */
  outputFile: z.string().min(1),
  claimedBy: z.string().optional(),
  /** `updatedAt` of the ledger state last applied, so an older event never overwrites a newer state. */
  workUpdatedAt: isoTime.optional(),
  /** Claims seen for this subtask (a claimer that dies and a redelivery count twice). */
  claims: z.int().min(0).default(0),
  /** What the worker reported when it completed (its `result`). */
  result: z.unknown().optional(),
  /** Why the subtask failed, was blocked or cancelled, or why the last attempt failed. */
  error: z.string().optional(),
  lastNote: z.string().optional(),
  offeredAt: isoTime.optional(),
  finishedAt: isoTime.optional(),
  updatedAt: isoTime,
});
export type SubtaskState = z.infer<typeof subtaskStateSchema>;

/** One recorded phase change. */
export const orchestrationTransitionSchema = z.strictObject({
  from: orchestrationPhaseSchema.nullable(),
  to: orchestrationPhaseSchema,
  at: isoTime,
  note: z.string().max(2_000).optional(),
});
export type OrchestrationTransition = z.infer<typeof orchestrationTransitionSchema>;

export const orchestrationCheckpointSchema = z.strictObject({
  at: isoTime,
  phase: orchestrationPhaseSchema,
  note: z.string().max(2_000).optional(),
});
export type OrchestrationCheckpoint = z.infer<typeof orchestrationCheckpointSchema>;

/**
 * An orchestration: the file `<workDir>/<orchestrationId>/orchestration.json`, mirrored to the KV bucket
 * `loom-shuttle-<p>` under key `<orchestrationId>`. `version` grows by one per write, so the mirror can
 * tell which copy is newer.
 */
export const orchestrationRecordSchema = z.strictObject({
  orchestrationId: agentIdSchema,
  projectId: z.string(),
  task: z.string(),
  phase: orchestrationPhaseSchema,
  version: z.int().min(1),
  /** The agent whose Shuttle server created the orchestration. */
  createdBy: agentIdSchema,
  createdAt: isoTime,
  updatedAt: isoTime,
  /** Subtask ids by wave; the subtasks of one wave may run in parallel. */
  waves: z.array(z.array(subtaskIdSchema)),
  /** In plan order (the order the planner gave). */
  subtasks: z.array(subtaskStateSchema),
  history: z.array(orchestrationTransitionSchema),
  checkpoints: z.array(orchestrationCheckpointSchema),
  /** Absolute path of the orchestration directory on the host that created it. */
  directory: z.string(),
  /** Where the last synthesis document was written, relative to the orchestration directory. */
  synthesisFile: z.string().optional(),
});
export type OrchestrationRecord = z.infer<typeof orchestrationRecordSchema>;

/**
 * What Shuttle puts in a work item's `contextData.shuttle`. A worker writes its output to `outputPath`
 * (absolute, inside the subtask's work directory) and may read the outputs of the subtasks it depends on.
 */
export const shuttleWorkContextSchema = z.strictObject({
  orchestrationId: agentIdSchema,
  subtaskId: subtaskIdSchema,
  title: z.string(),
  /** The subtask's own directory; a worker writes only here. */
  workDir: z.string().min(1),
  outputPath: z.string().min(1),
  dependencies: z.array(
    z.strictObject({ subtaskId: subtaskIdSchema, title: z.string(), outputPath: z.string() }),
  ),
});
export type ShuttleWorkContext = z.infer<typeof shuttleWorkContextSchema>;
