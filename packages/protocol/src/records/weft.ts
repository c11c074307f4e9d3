// Record and message schemas of the Weft coordinator and the agents it starts. Exported through records/index.ts.
import { z } from "zod";
import { agentIdSchema, nameToken, projectIdSchema } from "../names.js";

const isoTime = z.iso.datetime({ offset: true });

/** Spin-up mechanisms. `local` runs a child process on Weft's host; the others start an agent elsewhere. */
export const SPIN_UP_MECHANISMS = ["local", "ssh", "kubernetes", "github-actions", "webhook"] as const;
export const spinUpMechanismSchema = z.enum(SPIN_UP_MECHANISMS);
export type SpinUpMechanism = z.infer<typeof spinUpMechanismSchema>;

/**
 * Routing policy of one boundary: which agent types may claim its work, which is preferred when Weft
 * starts one, and whether work waiting there with no eligible agent online starts one.
 * KV `loom-boundaries`, key `<boundary>`, written by Weft from its config; read by every claimer.
 */
export const boundaryPolicySchema = z.object({
  boundary: nameToken("boundary"),
  /** Agent types allowed to claim work of this boundary; empty means every type. */
  allowedAgentTypes: z.array(nameToken("agent type")).default([]),
  preferredAgentType: nameToken("agent type").optional(),
  /** Whether work waiting with no eligible agent online triggers a spin-up. */
  spinUp: z.boolean().default(true),
  description: z.string().max(2_000).optional(),
});
export type BoundaryPolicy = z.infer<typeof boundaryPolicySchema>;

/** Whether an agent of `agentType` may claim work under `policy` (no policy: anyone may). */
export function agentTypeAllowed(policy: BoundaryPolicy | undefined, agentType: string | undefined): boolean {
  if (!policy || policy.allowedAgentTypes.length === 0) return true;
  return agentType !== undefined && policy.allowedAgentTypes.includes(agentType);
}

export const TARGET_ID_RE = /^[0-9a-f]{32}$/;
export const targetIdSchema = z.string().regex(TARGET_ID_RE, "targetId must be 32 lower-case hex characters");

export const TARGET_HEALTH = ["unknown", "healthy", "unhealthy"] as const;

/** A spin-up target: somewhere Weft can start an agent. KV `loom-targets-<p>`, key `<targetId>`. */
export const targetRecordSchema = z.object({
  targetId: targetIdSchema,
  projectId: projectIdSchema,
  name: nameToken("target"),
  description: z.string().max(2_000).optional(),
  mechanism: spinUpMechanismSchema,
  agentType: nameToken("agent type"),
  capabilities: z.array(nameToken("capability")),
  /** Boundaries this target may serve; empty means every boundary. */
  boundaries: z.array(nameToken("boundary")),
  /** Mechanism-specific settings (for `local`: command, args, env, cwd). */
  config: z.record(z.string(), z.unknown()),
  enabled: z.boolean(),
  /** Agents of this target running at once, at most. */
  maxConcurrent: z.int().min(1).max(1_000),
  /** Least time between two spin-ups on this target, in ms. */
  cooldownMs: z.int().min(0),
  /** How long an agent started here may go without work before Weft shuts it down, in ms. */
  idleTimeoutMs: z.int().min(1_000),
  /** How long a spin-up may take until its agent registers, in ms. */
  timeoutMs: z.int().min(100),
  health: z.object({
    status: z.enum(TARGET_HEALTH),
    checkedAt: isoTime.optional(),
    message: z.string().optional(),
  }),
  lastHealthyAt: isoTime.optional(),
  lastSpinUpAt: isoTime.optional(),
  useCount: z.int().min(0),
  tags: z.array(z.string().max(64)).max(32).optional(),
  createdAt: isoTime,
  updatedAt: isoTime,
});
export type TargetRecord = z.infer<typeof targetRecordSchema>;

/** What a mechanism can report of something it started (`gone`: no longer there; `unknown`: cannot tell). */
export const REMOTE_STATES = ["pending", "running", "succeeded", "failed", "gone", "unknown"] as const;
export type RemoteState = (typeof REMOTE_STATES)[number];

export const SPIN_UP_STATUSES = ["starting", "running", "failed", "stopped"] as const;
export const spinUpStatusSchema = z.enum(SPIN_UP_STATUSES);
export type SpinUpStatus = z.infer<typeof spinUpStatusSchema>;

/**
 * One spin-up: `starting` until an agent registers carrying its id (then `running`), `failed` when none
 * did within the target's timeout (what was started is stopped), `stopped` when its agent went away.
 * KV `loom-spinups-<p>`, key `<spinUpId>`.
 */
export const spinUpRecordSchema = z.object({
  spinUpId: z.string().regex(/^[0-9a-f]{32}$/),
  projectId: projectIdSchema,
  targetId: targetIdSchema,
  targetName: z.string(),
  mechanism: spinUpMechanismSchema,
  capability: nameToken("capability"),
  boundary: nameToken("boundary"),
  status: spinUpStatusSchema,
  /** Why it was started (`work` waiting, `manual`). */
  trigger: z.enum(["work", "manual"]),
  /** What the mechanism reports to stop it again (for `local`: the process id and host). */
  handle: z.record(z.string(), z.unknown()).optional(),
  agentId: agentIdSchema.optional(),
  reason: z.string().max(4_000).optional(),
  startedAt: isoTime,
  /** Latest time by which its agent must register. */
  deadlineAt: isoTime,
  verifiedAt: isoTime.optional(),
  /** Last time its agent was seen with work (or registered), for the idle reaper. */
  lastBusyAt: isoTime.optional(),
  shutdownRequestedAt: isoTime.optional(),
  /** What the mechanism last said of it (Weft's leader asks while it starts, for mechanisms that can tell). */
  remote: z
    .object({
      state: z.enum(REMOTE_STATES),
      message: z.string().max(2_000),
      checkedAt: isoTime,
    })
    .optional(),
  finishedAt: isoTime.optional(),
  updatedAt: isoTime,
});
export type SpinUpRecord = z.infer<typeof spinUpRecordSchema>;

/** A request on an agent's control subject `loom.<p>.agent.<agentId>.control`. */
export const agentControlRequestSchema = z.object({
  op: z.enum(["ping", "shutdown"]),
  reason: z.string().max(2_000).optional(),
  /** Shutdown: finish the item in hand first (true, default) or hand it back at once (false). */
  graceful: z.boolean().optional(),
});
export type AgentControlRequest = z.infer<typeof agentControlRequestSchema>;

export const agentControlReplySchema = z.object({
  ok: z.boolean(),
  agentId: agentIdSchema,
  op: z.enum(["ping", "shutdown"]),
  /** Items the agent holds right now. */
  inFlight: z.int().min(0),
  message: z.string().optional(),
});
export type AgentControlReply = z.infer<typeof agentControlReplySchema>;

export const WEFT_EVENT_KINDS = ["agent", "work", "target", "spinup"] as const;

/** An event Weft publishes on `loom.<p>.events.<kind>` (stream `loom_<p>_events`) for its SSE clients. */
export const weftEventSchema = z.object({
  kind: z.enum(WEFT_EVENT_KINDS),
  type: z.string(),
  projectId: projectIdSchema,
  at: isoTime,
  data: z.record(z.string(), z.unknown()),
});
export type WeftEvent = z.infer<typeof weftEventSchema>;
