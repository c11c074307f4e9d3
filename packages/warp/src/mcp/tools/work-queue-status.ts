import { defineTool } from "@loominal/mcp-kit";
import { nameToken } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

const boundaryStatus = z.object({
  boundary: z.string(),
  queued: z.int(),
  inFlight: z.int(),
  waitingClaimers: z.int(),
});

export function workQueueStatusTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_queue_status",
    title: "Work queue status",
    description:
      "Shows, per capability (and boundary), how many items wait to be claimed, how many are claimed or in flight, and how many are in the dead-letter queue.",
    input: z.strictObject({
      capability: nameToken("capability").optional().describe("Only this capability"),
    }),
    output: z.object({
      capabilities: z.array(
        z.object({
          capability: z.string(),
          queued: z.int(),
          inFlight: z.int(),
          dead: z.int(),
          boundaries: z.array(boundaryStatus),
        }),
      ),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ capability }) => {
      await ready();
      const status = await work.status(capability);
      const lines = status.capabilities.map(
        (c) => `- ${c.capability}: ${c.queued} queued, ${c.inFlight} in flight, ${c.dead} dead`,
      );
      return {
        data: status,
        text:
          lines.length === 0
            ? `No work queues${capability ? ` for ${capability}` : ""} yet.`
            : lines.join("\n"),
      };
    },
  });
}
