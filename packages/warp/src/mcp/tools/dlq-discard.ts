import { defineTool } from "@loominal/mcp-kit";
import { workIdSchema, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function dlqDiscardTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_dlq_discard",
    title: "Discard a dead letter",
    description: "Drops a dead-lettered item for good; the ledger keeps it with status discarded.",
    input: z.strictObject({
      workId: workIdSchema.describe("The workId of the dead item (see warp_dlq_list)"),
    }),
    output: z.object({ item: workItemSchema }),
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
    handler: async ({ workId }) => {
      await ready();
      const item = await work.dlqDiscard(workId);
      return { data: { item }, text: `Work ${workId} (task ${item.taskId}) discarded.` };
    },
  });
}
