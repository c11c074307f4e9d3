// Record and message schemas of work. Owned by the package that writes them; exported through records/index.ts.
import { z } from "zod";
import { agentIdSchema, nameToken } from "../names.js";
import { scopeSchema } from "../scopes.js";

/** Work ids are 32 lower-case hex characters: 12 of creation time in ms, 20 random (so keys sort by age). */
export const WORK_ID_RE = /^[0-9a-f]{32}$/;
export const TASK_ID_MAX = 256;
export const WORK_DESCRIPTION_MAX = 20_000;
/** Serialized size limits, in bytes of JSON, so one ledger value or event stays far below the 1 MiB payload. */
export const WORK_CONTEXT_MAX_BYTES = 64 * 1024;
export const WORK_RESULT_MAX_BYTES = 256 * 1024;
export const WORK_NOTE_MAX = 2_000;
export const WORK_REASON_MAX = 4_000;
export const WORK_PRIORITY_DEFAULT = 5;

export const workIdSchema = z
  .string()
  .superRefine((value, ctx) => {
    if (!WORK_ID_RE.test(value))
      ctx.addIssue({
        code: "custom",
        message: `workId ${JSON.stringify(value.slice(0, 80))} must be exactly 32 lower-case hex characters, as warp_work_broadcast returns it`,
      });
  })
  .meta({ pattern: WORK_ID_RE.source });

const isoDate = z.iso.datetime({ offset: true });

function jsonSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? "", "utf8");
}

/** A JSON object (free-form context or result). */
export const jsonObjectSchema = z.record(z.string(), z.unknown());

export const workContextSchema = jsonObjectSchema.superRefine((value, ctx) => {
  const size = jsonSize(value);
  if (size > WORK_CONTEXT_MAX_BYTES)
    ctx.addIssue({
      code: "custom",
      message: `contextData is ${size} bytes of JSON; the limit is ${WORK_CONTEXT_MAX_BYTES}`,
    });
});

/** What a claimer reports on completion: text or a JSON object. */
export const workResultSchema = z.union([z.string(), jsonObjectSchema]).superRefine((value, ctx) => {
  const size = jsonSize(value);
  if (size > WORK_RESULT_MAX_BYTES)
    ctx.addIssue({
      code: "custom",
      message: `result is ${size} bytes of JSON; the limit is ${WORK_RESULT_MAX_BYTES}. Store large output elsewhere and return a reference`,
    });
});
export type WorkResult = z.infer<typeof workResultSchema>;

/**
 * Where an item is in its life.
 * pending → claimed → completed | pending (retry) | dead; pending|claimed → cancelled; dead → pending (DLQ retry) | discarded.
 */
export const WORK_STATUSES = ["pending", "claimed", "completed", "dead", "cancelled", "discarded"] as const;
export const workStatusSchema = z.enum(WORK_STATUSES);
export type WorkStatus = z.infer<typeof workStatusSchema>;
export const TERMINAL_WORK_STATUSES: readonly WorkStatus[] = ["completed", "cancelled", "discarded"];

/** One claim of an item: who holds it, which delivery of which message, until when. */
export const workClaimSchema = z.object({
  agentId: agentIdSchema,
  /** Unique per claim; a stale claimer's id no longer matches the ledger. */
  claimId: z.string().regex(WORK_ID_RE),
  /** 1 for the first claim of the item. */
  attempt: z.int().min(1),
  claimedAt: isoDate,
  /** When the claim lapses unless extended by progress. */
  expiresAt: isoDate,
  /** Stream sequence and delivery count of the JetStream message this claim holds. */
  seq: z.int().min(1),
  deliveryCount: z.int().min(1),
  progressNote: z.string().max(WORK_NOTE_MAX).optional(),
  progressAt: isoDate.optional(),
});
export type WorkClaim = z.infer<typeof workClaimSchema>;

export const workErrorSchema = z.object({
  reason: z.string().max(WORK_REASON_MAX),
  retryable: z.boolean(),
  at: isoDate,
  agentId: agentIdSchema,
  attempt: z.int().min(0),
});
export type WorkError = z.infer<typeof workErrorSchema>;

export const WORK_EVENT_TYPES = [
  "offered",
  "claimed",
  "progress",
  "completed",
  "failed",
  "expired",
  "dead",
  "retried",
  "discarded",
  "cancelled",
] as const;
export const workEventTypeSchema = z.enum(WORK_EVENT_TYPES);
export type WorkEventType = z.infer<typeof workEventTypeSchema>;

/**
 * The transition that wrote a ledger record: which work events it stands for (none, one, or two when a
 * claim lapsed and was taken over or sent to the dead-letter queue in the same write), who made it and
 * when. Work events are read from the ledger's own writes, so an event can never be lost or disagree
 * with the state it describes.
 */
export const workTransitionSchema = z.object({
  events: z.array(workEventTypeSchema).max(2),
  agentId: agentIdSchema,
  at: isoDate,
  note: z.string().max(WORK_NOTE_MAX).optional(),
  reason: z.string().optional(),
  retryable: z.boolean().optional(),
});
export type WorkTransition = z.infer<typeof workTransitionSchema>;

/** The ledger record of one work item (KV `loom-work-<p>`, key = workId). */
export const workItemSchema = z.object({
  workId: z.string().regex(WORK_ID_RE),
  projectId: z.string(),
  taskId: z.string().min(1).max(TASK_ID_MAX),
  description: z.string().max(WORK_DESCRIPTION_MAX),
  capability: z.string(),
  boundary: z.string(),
  priority: z.int().min(1).max(10),
  /** Only an agent registered with this type may claim the item. */
  requiredAgentType: nameToken("agent type").optional(),
  deadline: isoDate.optional(),
  contextData: jsonObjectSchema.optional(),
  scope: scopeSchema,
  offeredBy: z.object({ agentId: agentIdSchema, userId: z.string() }),
  status: workStatusSchema,
  /** Claims made so far (each claim, including one that lapsed, is an attempt). */
  attempts: z.int().min(0),
  /** Claims allowed before the item goes to the dead-letter queue. */
  maxAttempts: z.int().min(1),
  /** The current claim (status claimed) or the last one. */
  claim: workClaimSchema.optional(),
  result: z.union([z.string(), jsonObjectSchema]).optional(),
  completedBy: agentIdSchema.optional(),
  lastError: workErrorSchema.optional(),
  /** Earliest time a retried item is offered again. */
  availableAt: isoDate.optional(),
  /** Why and when the item went to the dead-letter queue; `dlqSeq` locates its dead letter. */
  dead: z.object({ reason: z.string(), at: isoDate, dlqSeq: z.int().min(1).optional() }).optional(),
  cancelReason: z.string().max(WORK_REASON_MAX).optional(),
  createdAt: isoDate,
  updatedAt: isoDate,
  /** When the item reached completed, cancelled or discarded. */
  finishedAt: isoDate.optional(),
  /** The transition that wrote this revision of the record. */
  lastTransition: workTransitionSchema.optional(),
});
export type WorkItem = z.infer<typeof workItemSchema>;

/** A work item as its claimer sees it: the claim is always present. */
export type ClaimedWork = WorkItem & { status: "claimed"; claim: WorkClaim };

/** The message on `loom.<p>.work.<boundary>.<capability>`: the item as offered and its ledger revision. */
export const workOfferMessageSchema = z.object({
  workId: z.string().regex(WORK_ID_RE),
  /** Ledger revision the item had when this message was published; lets a claimer update without a read. */
  revision: z.int().min(1),
  item: workItemSchema,
});
export type WorkOfferMessage = z.infer<typeof workOfferMessageSchema>;

/** The message on `loom.<p>.dlq.<capability>`. */
export const deadLetterSchema = z.object({
  workId: z.string().regex(WORK_ID_RE),
  capability: z.string(),
  boundary: z.string(),
  reason: z.string(),
  attempts: z.int().min(0),
  deadAt: isoDate,
  item: workItemSchema,
});
export type DeadLetter = z.infer<typeof deadLetterSchema>;

/**
 * One work event: a ledger transition, with the item as it then was. Read from the writes of the ledger
 * bucket (`$KV.loom-work-<p>.<workId>`), not published separately.
 */
export const workEventSchema = z.object({
  type: workEventTypeSchema,
  workId: z.string().regex(WORK_ID_RE),
  projectId: z.string(),
  at: isoDate,
  /** The agent that caused the transition. */
  agentId: agentIdSchema,
  status: workStatusSchema,
  attempt: z.int().min(0),
  /** Ledger revision written by this transition. */
  revision: z.int().min(1),
  capability: z.string(),
  boundary: z.string(),
  taskId: z.string(),
  note: z.string().optional(),
  reason: z.string().optional(),
  retryable: z.boolean().optional(),
  item: workItemSchema,
});
export type WorkEvent = z.infer<typeof workEventSchema>;

/** What an agent offers (library and tool input). */
export const workOfferInputSchema = z.strictObject({
  taskId: z
    .string()
    .min(1, "taskId must not be empty")
    .max(TASK_ID_MAX, `taskId is limited to ${TASK_ID_MAX} characters`)
    .describe("Caller's id for the task (free text, echoed back in results and events)"),
  description: z
    .string()
    .min(1, "description must not be empty")
    .max(WORK_DESCRIPTION_MAX, `description is limited to ${WORK_DESCRIPTION_MAX} characters`)
    .describe("What needs doing, for the agent that claims it"),
  capability: nameToken("capability").describe("Capability a claimer must have, e.g. typescript"),
  boundary: nameToken("boundary").optional().describe("Boundary the work belongs to (default: default)"),
  priority: z.int().min(1).max(10).optional().describe("1 (lowest) to 10 (highest); default 5"),
  requiredAgentType: nameToken("agent type")
    .optional()
    .describe("Only an agent registered with this type may claim it (e.g. copilot-cli)"),
  deadline: isoDate.optional().describe("ISO 8601 time by which the work should be done (informational)"),
  contextData: workContextSchema.optional().describe("Free-form JSON object for the claimer (≤ 64 KiB)"),
  scope: scopeSchema
    .optional()
    .describe(
      "Who may claim: team (any agent of the project, default), private (only you), personal (your user)",
    ),
});
export type WorkOfferInput = z.infer<typeof workOfferInputSchema>;

/** A work item in a list: enough to choose and act on it, without the bulky fields. */
export const workSummarySchema = z.object({
  workId: z.string(),
  taskId: z.string(),
  status: workStatusSchema,
  capability: z.string(),
  boundary: z.string(),
  priority: z.int(),
  scope: scopeSchema,
  attempts: z.int(),
  maxAttempts: z.int(),
  /** The first 200 characters of the description. */
  description: z.string(),
  claimedBy: z.string().optional(),
  claimExpiresAt: z.string().optional(),
  deadline: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type WorkSummary = z.infer<typeof workSummarySchema>;

export function summarizeWork(item: WorkItem): WorkSummary {
  const claimed = item.status === "claimed" && item.claim !== undefined;
  return {
    workId: item.workId,
    taskId: item.taskId,
    status: item.status,
    capability: item.capability,
    boundary: item.boundary,
    priority: item.priority,
    scope: item.scope,
    attempts: item.attempts,
    maxAttempts: item.maxAttempts,
    description: item.description.length > 200 ? `${item.description.slice(0, 199)}…` : item.description,
    ...(claimed && item.claim ? { claimedBy: item.claim.agentId, claimExpiresAt: item.claim.expiresAt } : {}),
    ...(item.deadline !== undefined ? { deadline: item.deadline } : {}),
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}
