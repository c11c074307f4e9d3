import { defineTool } from "@loominal/mcp-kit";
import { workIdSchema, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function dlqRetryTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_dlq_retry",
    title: "Retry a dead letter",
    description:
      "Puts a dead-lettered item back in its queue. By default it gets one more attempt; resetAttempts gives it a fresh maxAttempts.",
    input: z.strictObject({
      workId: workIdSchema.describe("The workId of the dead item (see warp_dlq_list)"),
      resetAttempts: z
        .boolean()
        .optional()
        .describe("Start counting attempts from zero again (default false)"),
    }),
    output: z.object({ item: workItemSchema }),
    annotations: { readOnlyHint: false, idempotentHint: false },
    handler: async ({ workId, resetAttempts }) => {
      await ready();
      const item = await work.dlqRetry(workId, { resetAttempts: resetAttempts ?? false });
      return {
        data: { item },
        text: `Work ${workId} is back in the ${item.capability}@${item.boundary} queue (attempts ${item.attempts} of ${item.maxAttempts}).`,
      };
    },
  });
}
