import { defineTool } from "@loominal/mcp-kit";
import { workIdSchema, workItemSchema } from "@loominal/protocol";
import { z } from "zod";
import { WorkNotFoundError } from "../../work/index.js";
import type { WorkToolDeps } from "./work-tools.js";

export function workGetTool({ work, ready }: WorkToolDeps) {
  return defineTool({
    name: "warp_work_get",
    title: "Get a work item",
    description:
      "Shows one work item from the work ledger: its status, claim, attempts, result or last error.",
    input: z.strictObject({ workId: workIdSchema.describe("The workId of the item") }),
    output: z.object({ item: workItemSchema }),
    annotations: { readOnlyHint: true },
    handler: async ({ workId }) => {
      await ready();
      const item = await work.get(workId);
      if (!item) throw new WorkNotFoundError(workId);
      const who =
        item.status === "claimed" && item.claim
          ? ` by ${item.claim.agentId} until ${item.claim.expiresAt}`
          : "";
      return {
        data: { item },
        text: `Work ${workId} (task ${item.taskId}, ${item.capability}@${item.boundary}) is ${item.status}${who}; attempts ${item.attempts} of ${item.maxAttempts}.`,
      };
    },
  });
}
