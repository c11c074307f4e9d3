import { defineTool } from "@loominal/mcp-kit";
import { agentIdSchema, fileLeaseSchema, LEASE_PATH_MAX_CHARS } from "@loominal/protocol";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function leaseListTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_lease_list",
    title: "List leases",
    description:
      "Who holds which files of this project, in what mode, why and until when (live leases only, soonest to expire first). Filter by agent, or by a path or glob to see the leases overlapping it.",
    input: z.strictObject({
      agentId: agentIdSchema.optional().describe("Only this agent's leases"),
      path: z
        .string()
        .min(1)
        .max(LEASE_PATH_MAX_CHARS)
        .optional()
        .describe("Only leases overlapping this path or glob"),
    }),
    output: z.object({ leases: z.array(fileLeaseSchema), count: z.int() }),
    annotations: { readOnlyHint: true },
    handler: async ({ agentId, path }) =>
      warp.run(async () => {
        const leases = await warp.leases.list({
          ...(agentId !== undefined ? { agentId } : {}),
          ...(path !== undefined ? { path } : {}),
        });
        const mine = warp.agentId;
        return {
          data: { leases, count: leases.length },
          text: [
            `${leases.length} lease(s)`,
            ...leases.map(
              (l) =>
                `- ${l.paths.join(", ")}: ${l.mode}, ${l.agentId === mine ? "you" : `${l.handle} (${l.agentId})`}, until ${l.expiresAt}, leaseId ${l.leaseId}: ${l.reason}`,
            ),
          ].join("\n"),
        };
      }),
  });
}
