import { defineTool } from "@loominal/mcp-kit";
import { nameToken, summarizeWork, workStatusSchema, workSummarySchema } from "@loominal/protocol";
import { z } from "zod";
import type { WorkToolDeps } from "./work-tools.js";

export function workListTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_list",
    title: "List work items",
    description:
      "Lists work items of a capability from the work ledger, newest first, optionally by boundary and status. Pass nextCursor back as cursor for the next page. Use warp_work_get for an item's full record.",
    input: z.strictObject({
      capability: nameToken("capability").describe("Capability of the items"),
      boundary: nameToken("boundary").optional().describe("Only this boundary"),
      status: z
        .array(workStatusSchema)
        .min(1)
        .max(workStatusSchema.options.length)
        .optional()
        .describe("Only items in these states"),
      limit: z.int().min(1).max(100).optional().describe("Items per page (default 50)"),
      cursor: z
        .string()
        .regex(/^[1-9][0-9]{0,15}$/, "the nextCursor of a previous warp_work_list result")
        .optional()
        .describe("nextCursor of the previous page"),
    }),
    output: z.object({
      items: z.array(workSummarySchema),
      count: z.int(),
      hasMore: z.boolean(),
      nextCursor: z.string().optional(),
    }),
    annotations: { readOnlyHint: true },
    handler: async ({ capability, boundary, status, limit, cursor }) => {
      await ready();
      const page = await work.list({
        capability,
        ...(boundary ? { boundary } : {}),
        ...(status ? { status } : {}),
        ...(limit ? { limit } : {}),
        ...(cursor ? { cursor } : {}),
      });
      const items = page.items.map(summarizeWork);
      const lines = items.map(
        (i) => `- ${i.workId} [${i.status}] ${i.taskId} (p${i.priority}, ${i.attempts}/${i.maxAttempts})`,
      );
      return {
        data: {
          items,
          count: items.length,
          hasMore: page.nextCursor !== undefined,
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        },
        text:
          items.length === 0
            ? `No ${capability} work items${status ? ` in ${status.join("/")}` : ""}.`
            : `${items.length} ${capability} work item(s)${page.nextCursor ? " (more: pass nextCursor)" : ""}:\n${lines.join("\n")}`,
      };
    },
  });
}
