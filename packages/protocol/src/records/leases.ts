import { z } from "zod";
import { agentIdSchema } from "../names.js";

const isoTime = z.iso.datetime({ offset: true });

/** `exclusive`: nobody else may lease an overlapping path. `shared`: others may share, nobody may take it exclusively. */
export const LEASE_MODES = ["exclusive", "shared"] as const;
export const leaseModeSchema = z.enum(LEASE_MODES);
export type LeaseMode = z.infer<typeof leaseModeSchema>;

/** Most paths or globs one lease may name. */
export const LEASE_PATHS_MAX = 64;
/** Longest path or glob, in characters. */
export const LEASE_PATH_MAX_CHARS = 512;
/** Longest reason, in characters. */
export const LEASE_REASON_MAX_CHARS = 500;
/** Most live leases a project holds at once (they all live in one KV value). */
export const LEASES_PER_PROJECT_MAX = 512;
/** Lease TTL bounds and default, in ms. */
export const LEASE_TTL_MIN_MS = 10_000;
export const LEASE_TTL_MAX_MS = 8 * 3_600_000;
export const LEASE_TTL_DEFAULT_MS = 30 * 60_000;

/** One file/path lease as stored in the project's lease table. */
export const fileLeaseSchema = z.object({
  leaseId: z.string().regex(/^[0-9a-f]{32}$/),
  agentId: agentIdSchema,
  handle: z.string(),
  /** The process holding the agent's identity claim when the lease was taken (`pid N on host`). */
  holder: z.string(),
  mode: leaseModeSchema,
  /** Normalised paths or globs, relative to the project directory, `/`-separated. */
  paths: z.array(z.string().min(1).max(LEASE_PATH_MAX_CHARS)).min(1).max(LEASE_PATHS_MAX),
  reason: z.string().max(LEASE_REASON_MAX_CHARS),
  acquiredAt: isoTime,
  renewedAt: isoTime,
  expiresAt: isoTime,
  ttlMs: z.int().positive(),
});
export type FileLease = z.infer<typeof fileLeaseSchema>;

/** Every lease of a project: KV `loom-file-leases-<p>`, key `table`, changed only by compare-and-set. */
export const fileLeaseTableSchema = z.object({
  leases: z.array(fileLeaseSchema).max(LEASES_PER_PROJECT_MAX),
});
export type FileLeaseTable = z.infer<typeof fileLeaseTableSchema>;

/**
 * What `loominal hook` has already shown one agent: KV `loom-reminders-<p>`, key `<agentId>`.
 * Direct messages up to `inboxSeq` of the inbox stream created at `inboxStream`; work offers, per offer
 * subject (`loom.<p>.work.<boundary>.<capability>`), up to the sequence in `work` of the work stream
 * created at `workStream`; lease conflicts as `<leaseId>:<path>` (the most recent ones).
 */
export const reminderStateSchema = z.object({
  inboxStream: z.string().optional(),
  inboxSeq: z.int().min(0),
  workStream: z.string().optional(),
  work: z.record(z.string(), z.int().min(0)),
  conflicts: z.array(z.string()).max(256),
});
export type ReminderState = z.infer<typeof reminderStateSchema>;
