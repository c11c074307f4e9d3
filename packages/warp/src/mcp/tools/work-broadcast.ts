import { defineTool } from "@loominal/mcp-kit";
import { workItemSchema, workOfferInputSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workBroadcastTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_broadcast",
    title: "Offer work",
    description:
      "Offers a work item to the agents with the capability (in boundary, default 'default'). At least once: a claimer that neither completes nor extends its claim within the ack wait loses it; after maxAttempts the item goes to the dead-letter queue. scope: team (default), private (only you), personal (your user's agents).",
    input: workOfferInputSchema,
    output: z.object({ workId: z.string(), item: workItemSchema }),
    annotations: { readOnlyHint: false, idempotentHint: false },
    handler: async (input) => {
      await ready();
      const item = await work.offer(input);
      return {
        data: { workId: item.workId, item },
        text: `Offered work ${item.workId} (task ${item.taskId}) to ${item.capability}@${item.boundary}, priority ${item.priority}, scope ${item.scope}.`,
      };
    },
  });
}
