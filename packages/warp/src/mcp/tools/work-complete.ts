import { defineTool } from "@loominal/mcp-kit";
import { workIdSchema, workItemSchema, workResultSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workCompleteTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_complete",
    title: "Complete claimed work",
    description:
      "Completes an item you claimed, recording its result (text or a JSON object, at most 256 KiB). An item is completed only once: conflict means your claim lapsed and another agent has the item.",
    input: z.strictObject({
      workId: workIdSchema.describe("The workId from warp_work_claim"),
      result: workResultSchema.describe("What came of the work: text or a JSON object"),
    }),
    output: z.object({ item: workItemSchema }),
    annotations: { readOnlyHint: false, idempotentHint: false },
    handler: async ({ workId, result }) => {
      await ready();
      const item = await work.complete(workId, result);
      return {
        data: { item },
        text: `Completed work ${workId} (task ${item.taskId}) after ${item.attempts} attempt(s).`,
      };
    },
  });
}
