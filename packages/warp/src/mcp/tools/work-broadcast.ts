import { defineTool } from "@loominal/mcp-kit";
import { workItemSchema, workOfferInputSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workBroadcastTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_broadcast",
    title: "Offer work",
    description:
      "Offers a work item to every agent with the capability (within a boundary, default 'default'). Delivery is at least once: a claimer that does not complete or extend its claim within the ack wait loses it, and after maxAttempts the item goes to the dead-letter queue. scope: team (default, any agent of the project), private (only you), personal (agents of your user).",
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
