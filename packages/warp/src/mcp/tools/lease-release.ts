import { defineTool } from "@loominal/mcp-kit";
import { z } from "zod";
import type { WarpToolDeps } from "./index.js";

export function leaseReleaseTool({ warp }: WarpToolDeps) {
  return defineTool({
    name: "warp_lease_release",
    title: "Release leases",
    description:
      "Releases the leases you name (leaseIds), or all of yours when you name none. Do it as soon as you are done with the files.",
    input: z.strictObject({
      leaseIds: z
        .array(z.string().regex(/^[0-9a-f]{32}$/))
        .min(1)
        .max(512)
        .optional()
        .describe("Leases to release (default: all of yours)"),
    }),
    output: z.object({ released: z.array(z.string()) }),
    annotations: { destructiveHint: true, idempotentHint: true },
    handler: async ({ leaseIds }) =>
      warp.run(async () => {
        const released = await warp.leases.release(leaseIds);
        return {
          data: { released },
          text:
            released.length === 0 ? "No lease of yours to release." : `Released ${released.length} lease(s).`,
        };
      }),
  });
}
