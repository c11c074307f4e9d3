import { defineTool } from "@loominal/mcp-kit";
import { fileLeaseSchema, LEASE_TTL_MAX_MS, LEASE_TTL_MIN_MS } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function leaseRenewTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_lease_renew",
    title: "Renew a lease",
    description:
      "Extends one of your leases from now by ttlMs (default: the TTL it was taken with). A lease that has already expired cannot be renewed: acquire it again.",
    input: z.strictObject({
      leaseId: z
        .string()
        .regex(/^[0-9a-f]{32}$/)
        .describe("leaseId from warp_lease_acquire"),
      ttlMs: z
        .int()
        .min(LEASE_TTL_MIN_MS)
        .max(LEASE_TTL_MAX_MS)
        .optional()
        .describe("New lifetime from now, in ms (default: the TTL it was taken with)"),
    }),
    output: z.object({ lease: fileLeaseSchema }),
    handler: async ({ leaseId, ttlMs }) =>
      warp.run(async () => {
        const lease = await warp.leases.renew(leaseId, ttlMs);
        return { data: { lease }, text: `Lease ${leaseId} renewed until ${lease.expiresAt}.` };
      }),
  });
}
