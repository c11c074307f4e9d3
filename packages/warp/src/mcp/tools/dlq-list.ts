import { defineTool } from "@loominal/mcp-kit";
import { nameToken, summarizeWork, workSummarySchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function dlqListTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_dlq_list",
    title: "List dead letters",
    description:
      "Lists work items in the dead-letter queue (failed for good or out of attempts), oldest first, with the reason. Retry one with warp_dlq_retry or drop it with warp_dlq_discard.",
    input: z.strictObject({
      capability: nameToken("capability").optional().describe("Only this capability"),
      limit: z.int().min(1).max(100).optional().describe("Letters per page (default 50)"),
      cursor: z
        .string()
        .regex(/^[1-9][0-9]{0,15}$/, "cursor must be the nextCursor of a previous warp_dlq_list result")
        .optional()
        .describe("nextCursor of the previous page"),
    }),
    output: z.object({
      letters: z.array(z.object({ reason: z.string(), deadAt: z.string(), item: workSummarySchema })),
      count: z.int(),
      hasMore: z.boolean(),
      nextCursor: z.string().optional(),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ capability, limit, cursor }) => {
      await ready();
      const page = await work.dlqList({
        ...(capability ? { capability } : {}),
        ...(limit ? { limit } : {}),
        ...(cursor ? { cursor } : {}),
      });
      const letters = page.letters.map((l) => ({
        reason: l.reason,
        deadAt: l.deadAt,
        item: summarizeWork(l.item),
      }));
      const lines = letters.map(
        (l) => `- ${l.item.workId} ${l.item.taskId} (${l.item.capability}): ${l.reason}`,
      );
      return {
        data: {
          letters,
          count: letters.length,
          hasMore: page.nextCursor !== undefined,
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        },
        text:
          letters.length === 0
            ? "The dead-letter queue is empty."
            : `${letters.length} dead letter(s):\n${lines.join("\n")}`,
      };
    },
  });
}
