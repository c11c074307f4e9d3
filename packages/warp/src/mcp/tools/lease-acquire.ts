import { defineTool } from "@loominal/mcp-kit";
import {
  fileLeaseSchema,
  LEASE_PATH_MAX_CHARS,
  LEASE_PATHS_MAX,
  LEASE_REASON_MAX_CHARS,
  LEASE_TTL_DEFAULT_MS,
  LEASE_TTL_MAX_MS,
  LEASE_TTL_MIN_MS,
  leaseModeSchema,
} from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";
import { describeConflict, leaseConflictSchema } from "./lease-shared.js";

export function leaseAcquireTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_lease_acquire",
    title: "Lease files",
    description:
      "Leases files or directories before you change them, so other agents see who works where. exclusive (default): nobody else may lease an overlapping path; shared: others may share it, nobody may take it exclusively. If any path overlaps another agent's lease, nothing is taken and the result names holder, reason and expiry. Renew before ttlMs runs out; release when done.",
    input: z.strictObject({
      paths: z
        .array(z.string().min(1).max(LEASE_PATH_MAX_CHARS))
        .min(1)
        .max(LEASE_PATHS_MAX)
        .describe(
          "Paths or globs relative to the repository root ('src/api', 'packages/*/src/**/*.ts'); a path covers everything below it",
        ),
      mode: leaseModeSchema.optional().describe("exclusive (default) or shared"),
      ttlMs: z
        .int()
        .min(LEASE_TTL_MIN_MS)
        .max(LEASE_TTL_MAX_MS)
        .optional()
        .describe(
          `How long the lease lasts unless renewed, in ms (default ${LEASE_TTL_DEFAULT_MS / 60_000} min)`,
        ),
      reason: z
        .string()
        .min(1)
        .max(LEASE_REASON_MAX_CHARS)
        .describe("What you are doing there, shown to others"),
    }),
    output: z.object({
      acquired: z.boolean(),
      lease: fileLeaseSchema.nullable(),
      conflicts: z.array(leaseConflictSchema),
    }),
    handler: async ({ paths, mode, ttlMs, reason }) =>
      warp.run(async () => {
        const r = await warp.leases.acquire({
          paths,
          mode: mode ?? "exclusive",
          reason,
          ...(ttlMs !== undefined ? { ttlMs } : {}),
        });
        if (r.acquired)
          return {
            data: { acquired: true, lease: r.lease, conflicts: [] },
            text: `Leased ${r.lease.paths.join(", ")} (${r.lease.mode}) until ${r.lease.expiresAt}; leaseId ${r.lease.leaseId}.`,
          };
        return {
          data: { acquired: false, lease: null, conflicts: r.conflicts },
          text: [
            "Not leased: other agents hold overlapping paths. Work elsewhere, or message the holder.",
            ...r.conflicts.map(describeConflict),
          ].join("\n"),
        };
      }),
  });
}
