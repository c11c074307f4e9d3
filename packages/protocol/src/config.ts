import { z } from "zod";
import { nameToken, projectIdSchema } from "./names.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** One channel in `.loominal.json` → `warp.channels`. */
export const channelConfigSchema = z.strictObject({
  name: nameToken("channel"),
  description: z.string().max(500).optional(),
  /** Messages kept per channel; the oldest go first. */
  maxMessages: z.int().positive().default(10_000),
  /** Bytes kept per channel. */
  maxBytes: z
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  /** How long a message is kept, in milliseconds. */
  maxAgeMs: z.int().positive().default(DAY_MS),
});
export type ChannelConfig = z.infer<typeof channelConfigSchema>;

export const DEFAULT_CHANNELS: ChannelConfig[] = [
  {
    name: "roadmap",
    description: "Plans, priorities and milestones",
    maxMessages: 10_000,
    maxBytes: 10 * 1024 * 1024,
    maxAgeMs: DAY_MS,
  },
  {
    name: "parallel-work",
    description: "Who is working on what, to avoid collisions",
    maxMessages: 10_000,
    maxBytes: 10 * 1024 * 1024,
    maxAgeMs: DAY_MS,
  },
  {
    name: "errors",
    description: "Failures worth another agent's attention",
    maxMessages: 10_000,
    maxBytes: 10 * 1024 * 1024,
    maxAgeMs: DAY_MS,
  },
];

export const warpConfigSchema = z.strictObject({
  channels: z.array(channelConfigSchema).default(DEFAULT_CHANNELS),
  /** How often a registered agent refreshes its registry entry. Offline after 3 missed intervals. */
  heartbeatIntervalMs: z.int().min(100).default(15_000),
  work: z
    .strictObject({
      /** How long a claim is held without progress before the item comes back. */
      ackWaitMs: z.int().min(100).default(300_000),
      /** Deliveries before an item goes to the dead-letter queue. */
      maxAttempts: z.int().min(1).max(100).default(3),
      /** Delay before a failed item is offered again. */
      retryBackoffMs: z.int().min(0).default(1_000),
      /**
       * Days a finished item (completed, cancelled, discarded) stays in the work ledger before work
       * maintenance removes it; dead items stay at least as long as their dead letters.
       */
      retentionDays: z.number().positive().max(3_650).default(7),
      /** How long dead letters are kept. */
      dlqMaxAgeMs: z
        .int()
        .positive()
        .default(30 * DAY_MS),
    })
    .prefault({}),
  inbox: z
    .strictObject({
      maxMessagesPerAgent: z.int().positive().default(1_000),
      maxAgeMs: z
        .int()
        .positive()
        .default(7 * DAY_MS),
    })
    .prefault({}),
});
export type WarpConfig = z.infer<typeof warpConfigSchema>;

export const patternConfigSchema = z.strictObject({
  /** TTL of the ephemeral memory bucket (categories `recent`, `tasks`), from each key's last write. */
  ephemeralTtlMs: z.int().min(1_000).default(DAY_MS),
  /** At most this many `core` memories per user (personal memories follow the user across projects). */
  maxCoreMemories: z.int().positive().default(100),
  /**
   * Most public memories one process holds for recall and search (all projects share the public bucket);
   * the newest are kept. `LOOMINAL_PATTERN_MAX_PUBLIC_MEMORIES` overrides it.
   */
  maxPublicMemories: z.int().positive().default(10_000),
  /**
   * Most team memories (of this project) one process holds for recall and search; the newest are kept,
   * like the public view.
   */
  maxTeamMemories: z.int().positive().default(10_000),
});
export type PatternConfig = z.infer<typeof patternConfigSchema>;

export const shuttleConfigSchema = z.strictObject({
  /** Where orchestration work directories live; relative paths are taken from the project directory. */
  workDir: z.string().min(1).default(".loominal/shuttle"),
});
export type ShuttleConfig = z.infer<typeof shuttleConfigSchema>;

/**
 * A section for a service that does not define its schema here yet (Weft, Runner, the agent worker):
 * it must be a JSON object; its keys are validated by that service, which will tighten this schema.
 */
export const serviceSectionSchema = z.record(z.string(), z.unknown());
export type ServiceSection = z.infer<typeof serviceSectionSchema>;

/**
 * The project file `.loominal.json`. Every key is optional; environment variables override it.
 * Unknown top-level keys are an error (a typo such as `wrap` must not be ignored silently); the sections
 * of services still to come (`weft`, `runner`, `agent`) are accepted as objects.
 */
export const projectFileSchema = z.strictObject({
  $schema: z.string().optional(),
  projectId: projectIdSchema.optional(),
  /** Server URL(s) without credentials: the file is usually committed (credentials go in the environment). */
  natsUrl: z.string().min(1).optional(),
  agentName: nameToken("agent name").optional(),
  warp: warpConfigSchema.prefault({}),
  pattern: patternConfigSchema.prefault({}),
  shuttle: shuttleConfigSchema.prefault({}),
  weft: serviceSectionSchema.optional(),
  runner: serviceSectionSchema.optional(),
  agent: serviceSectionSchema.optional(),
});

/** The top-level keys `.loominal.json` accepts (for "did you mean" messages). */
export const PROJECT_FILE_KEYS: readonly string[] = Object.keys(projectFileSchema.shape);
export type ProjectFile = z.infer<typeof projectFileSchema>;
export type ProjectFileInput = z.input<typeof projectFileSchema>;
