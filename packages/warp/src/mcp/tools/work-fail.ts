import { defineTool } from "@loominal/mcp-kit";
import { WORK_REASON_MAX, workIdSchema, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workFailTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_fail",
    title: "Fail claimed work",
    description:
      "Reports that an item you claimed failed. retryable (default true) puts it back in the queue after a backoff, until maxAttempts is reached; retryable false, or the last attempt, sends it to the dead-letter queue (see warp_dlq_list).",
    input: z.strictObject({
      workId: workIdSchema.describe("The workId from warp_work_claim"),
      reason: z.string().min(1).max(WORK_REASON_MAX).describe("What went wrong"),
      retryable: z.boolean().optional().describe("Whether another attempt may succeed (default true)"),
    }),
    output: z.object({ item: workItemSchema, deadLettered: z.boolean() }),
    annotations: { readOnlyHint: false, idempotentHint: false },
    handler: async ({ workId, reason, retryable }) => {
      await ready();
      const item = await work.fail(workId, reason, retryable ?? true);
      const dead = item.status === "dead";
      return {
        data: { item, deadLettered: dead },
        text: dead
          ? `Work ${workId} moved to the dead-letter queue: ${item.dead?.reason ?? reason}.`
          : `Work ${workId} goes back to the queue (attempt ${item.attempts} of ${item.maxAttempts} failed); offered again from ${item.availableAt ?? "now"}.`,
      };
    },
  });
}
