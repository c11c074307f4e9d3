import { z } from "zod";
import { agentIdSchema, nameToken, projectIdSchema } from "../names.js";
import { scopeSchema } from "../scopes.js";

/** Longest message text a channel or direct message may carry, in characters. */
export const MESSAGE_MAX_CHARS = 32_768;

/** Largest `metadata` object of a direct message, in characters of its JSON. */
export const METADATA_MAX_CHARS = 8_192;

/** The message type of a direct message when the sender names none. */
export const DEFAULT_MESSAGE_TYPE = "text";

const isoTime = z.iso.datetime({ offset: true });

/** A message id: 32 lower-case hex, given to every channel and direct message when it is sent. */
export const MESSAGE_ID_RE = /^[0-9a-f]{32}$/;
export const messageIdSchema = z
  .string()
  .regex(MESSAGE_ID_RE, "a messageId is 32 lower-case hex characters, as a read or send returned it");

/**
 * A thread: the messageId of the message that started it, or a name the agents chose
 * (`^[a-z0-9][a-z0-9_-]{0,63}$`). Messages without one are each their own thread (`threadId` = `messageId`).
 */
export const THREAD_ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const threadIdSchema = z
  .string()
  .regex(THREAD_ID_RE, "a threadId is 1–64 of a-z, 0-9, '_' and '-', starting with a letter or digit");

/** Thread fields every stored message may carry (absent on messages written before threads existed). */
const threadFields = {
  messageId: messageIdSchema.optional(),
  threadId: threadIdSchema.optional(),
  /** The messageId this message answers. */
  replyTo: messageIdSchema.optional(),
};

/** A message on a channel, as stored in the channel's stream (`loom.<p>.chan.<channel>`). */
export const channelMessageSchema = z.object({
  channel: nameToken("channel"),
  projectId: projectIdSchema,
  senderId: agentIdSchema,
  senderHandle: nameToken("handle"),
  /** The sender's userId, for `personal` scope. */
  userId: agentIdSchema,
  /** Who may read it; enforced by every reader. */
  scope: scopeSchema,
  message: z.string().max(MESSAGE_MAX_CHARS),
  sentAt: isoTime,
  ...threadFields,
});
export type ChannelMessage = z.infer<typeof channelMessageSchema>;

/**
 * How soon a direct message wants attention: `urgent` ones are put first in front of the recipient by the
 * next `loominal hook` run. Absent means `normal`.
 */
export const MESSAGE_PRIORITIES = ["normal", "urgent"] as const;
export const messagePrioritySchema = z.enum(MESSAGE_PRIORITIES);
export type MessagePriority = z.infer<typeof messagePrioritySchema>;

/** A direct message, as stored in the inbox stream on subject `loom.<p>.inbox.<to>`. */
export const directMessageSchema = z.object({
  priority: messagePrioritySchema.optional(),
  from: agentIdSchema,
  fromHandle: nameToken("handle"),
  to: agentIdSchema,
  projectId: projectIdSchema,
  messageType: nameToken("name"),
  message: z.string().max(MESSAGE_MAX_CHARS),
  metadata: z.record(z.string(), z.unknown()).optional(),
  sentAt: isoTime,
  ...threadFields,
  /** The sender waits for the recipient's `warp_messages_ack`; the ack is kept in KV `loom-acks-<p>`. */
  ackRequired: z.boolean().optional(),
});
export type DirectMessage = z.infer<typeof directMessageSchema>;

/** What an agent says about itself (`reportedStatus`); `offline` is written when it shuts down or stops heartbeating. */
export const AGENT_STATUSES = ["online", "busy", "offline"] as const;
export const agentStatusSchema = z.enum(AGENT_STATUSES);
export type AgentStatus = z.infer<typeof agentStatusSchema>;

/**
 * What readers show (`status`), derived without the agent calling anything: `busy` while it holds a work
 * claim or a lease (or says it is busy), `idle` while its heartbeats arrive and it holds nothing,
 * `offline` once heartbeats are overdue or it shut down.
 */
export const AGENT_PRESENCES = ["idle", "busy", "offline"] as const;
export const agentPresenceSchema = z.enum(AGENT_PRESENCES);
export type AgentPresence = z.infer<typeof agentPresenceSchema>;

/** A status filter: a presence, or `online` for every live agent (idle or busy). */
export const presenceFilterSchema = z.enum(["idle", "busy", "offline", "online"]);
export type PresenceFilter = z.infer<typeof presenceFilterSchema>;

/** Whether a presence passes a status filter (`online` passes idle and busy). */
export function presenceMatches(presence: AgentPresence, filter: PresenceFilter): boolean {
  return filter === "online" ? presence !== "offline" : presence === filter;
}

/** A registry entry: KV `loom-registry`, key `<projectId>.<agentId>`. */
export const agentRecordSchema = z.object({
  agentId: agentIdSchema,
  projectId: projectIdSchema,
  userId: agentIdSchema,
  handle: nameToken("handle"),
  agentType: nameToken("agent type"),
  capabilities: z.array(nameToken("capability")),
  /** Boundaries this agent accepts work in; empty means every boundary. */
  boundaries: z.array(nameToken("boundary")),
  /** Who may discover this agent; enforced by every reader. */
  scope: scopeSchema,
  /** The status the agent last reported; readers show `offline` when heartbeats are overdue. */
  status: agentStatusSchema,
  currentTaskCount: z.int().min(0),
  maxConcurrentTasks: z.int().min(1),
  hostname: z.string(),
  pid: z.int().min(0),
  registeredAt: isoTime,
  lastHeartbeat: isoTime,
  /** The writer's heartbeat interval: an entry is offline once `3 × heartbeatIntervalMs` pass without one. */
  heartbeatIntervalMs: z.int().positive(),
  /** The Weft spin-up that started this agent (`LOOMINAL_SPINUP_ID`), which its registration verifies. */
  spinUpId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
  /** When the agent last reported its task count (it had work until then), for idle shutdown. */
  lastWorkAt: isoTime.optional(),
  /** The spin-up target that started this agent (`LOOMINAL_TARGET_ID`). */
  targetId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .optional(),
  /** Work claims the agent's process holds, written by the process itself whenever the number changes. */
  activeClaims: z.int().min(0).optional(),
  /** File leases the agent's process holds, written like `activeClaims`. */
  activeLeases: z.int().min(0).optional(),
});
export type AgentRecord = z.infer<typeof agentRecordSchema>;

/** Heartbeats an agent may miss before readers show it offline. */
export const MISSED_HEARTBEATS_OFFLINE = 3;

/**
 * The presence readers show at `nowMs`: `offline` when the agent shut down or its heartbeats are overdue,
 * `busy` when it holds a claim or lease or reported itself busy, else `idle`.
 */
export function effectiveAgentStatus(record: AgentRecord, nowMs: number): AgentPresence {
  if (record.status === "offline") return "offline";
  const last = Date.parse(record.lastHeartbeat);
  if (!Number.isFinite(last)) return "offline";
  if (nowMs - last > MISSED_HEARTBEATS_OFFLINE * record.heartbeatIntervalMs) return "offline";
  const holding = (record.activeClaims ?? 0) + (record.activeLeases ?? 0);
  return record.status === "busy" || holding > 0 ? "busy" : "idle";
}

/** A registry entry as readers see it: `status` is the derived presence, `reportedStatus` what the agent said. */
export const agentViewSchema = agentRecordSchema.extend({
  status: agentPresenceSchema,
  reportedStatus: agentStatusSchema,
});
export type AgentViewRecord = z.infer<typeof agentViewSchema>;

/** Thread fields of a message as a reader gets it: a message sent before threads existed has no messageId. */
const threadViewFields = {
  messageId: z.string().optional(),
  /** Its thread: the one it was sent in, else its own messageId. */
  threadId: z.string().optional(),
  replyTo: z.string().optional(),
};

/** A channel message as a reader gets it. */
export const channelMessageViewSchema = z.object({
  seq: z.int().positive(),
  senderId: agentIdSchema,
  senderHandle: z.string(),
  scope: scopeSchema,
  message: z.string(),
  sentAt: isoTime,
  ...threadViewFields,
});

/** A direct message as its recipient gets it. */
export const directMessageViewSchema = z.object({
  seq: z.int().positive(),
  from: agentIdSchema,
  fromHandle: z.string(),
  messageType: z.string(),
  message: z.string(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  priority: messagePrioritySchema.optional(),
  sentAt: isoTime,
  ...threadViewFields,
  /** The sender waits for your `warp_messages_ack {messageId}`. */
  ackRequired: z.boolean().optional(),
});

/**
 * The acknowledgement state of one direct message sent with `ackRequired`: KV `loom-acks-<p>`, key
 * `<senderId>.<messageId>`, written pending by the sender before the message is published and marked
 * acknowledged by the recipient.
 */
export const messageAckSchema = z.object({
  messageId: messageIdSchema,
  projectId: projectIdSchema,
  from: agentIdSchema,
  to: agentIdSchema,
  toHandle: z.string().optional(),
  threadId: threadIdSchema.optional(),
  /** The first characters of the message, so the sender recognises it. */
  excerpt: z.string().max(200),
  sentAt: isoTime,
  ackedAt: isoTime.optional(),
});
export type MessageAck = z.infer<typeof messageAckSchema>;

/**
 * What one agent has read of its inbox: every message of its subject with a stream sequence ≤ `floor`
 * is read, and so are those in `consumed` (all above `floor`). KV `loom-inbox-ledger`, key `<p>.<agentId>`.
 * `stream` is the creation time of the inbox stream the sequences belong to: a stream created again
 * (deleted, or a server that lost its store) numbers from 1, so a ledger of another stream starts over.
 * `lastSeen` and `waiting` let the next read tell how many messages it had seen waiting were removed
 * unread by the inbox's retention (`maxMessagesPerAgent`, `maxAgeMs`) meanwhile.
 */
export const inboxLedgerSchema = z.object({
  floor: z.int().min(0),
  consumed: z.array(z.int().positive()),
  stream: z.string().optional(),
  /** Highest sequence of this agent's subject any read has seen. */
  lastSeen: z.int().min(0).optional(),
  /** Messages at or below `lastSeen` that were waiting unread after the last read. */
  waiting: z.int().min(0).optional(),
});
export type InboxLedger = z.infer<typeof inboxLedgerSchema>;
