import { agentIdSchema, leaseModeSchema } from "@loominal/protocol";
import { z } from "zod";
import type { LeaseConflict } from "../../leases/file-leases.js";

export const leaseConflictSchema = z.object({
  leaseId: z.string(),
  agentId: agentIdSchema,
  handle: z.string(),
  mode: leaseModeSchema,
  heldPath: z.string(),
  path: z.string(),
  reason: z.string(),
  expiresAt: z.string(),
});

/** One line for a conflict: whose lease, on what, why, until when. */
export function describeConflict(c: LeaseConflict): string {
  return `- ${c.path} overlaps ${c.heldPath}, leased ${c.mode} by ${c.handle} (${c.agentId}) until ${c.expiresAt}: ${c.reason}`;
}
